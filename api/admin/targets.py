"""/api/admin/targets: destinations managed at run time (the registry), and env ones shown.

Handlers parse, call one use case of domain/destinations, answer; a change tells this
process's directory to reload (others follow within its TTL, ~2 s).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from api import directory
from api.admin.auth import admin_only
from api.transaction import Conn
from domain.destinations.health import TargetHealth, target_health
from domain.destinations.ping import PingResult, ping_target
from domain.destinations.registry import (
    CreateTarget,
    Deleted,
    Disable,
    RotatedSecret,
    TargetCreated,
    TargetView,
    UpdateTarget,
    create_target,
    delete_target,
    get_target,
    list_targets,
    rotate_secret,
    set_enabled,
    update_target,
)
from domain.destinations.replay import Queued, ReplayFilter, replay_target

TargetName = Annotated[str, FromPath]


class TargetController(Controller):
    path = "/api/admin/targets"
    guards = [admin_only]
    tags = ["admin: destinations"]

    @get("/", summary="Every destination: env ones (read-only) and the registry's")
    async def index(self, state: State, conn: Conn) -> list[TargetView]:
        return await list_targets(conn, state.settings)

    @post("/", summary="Create a destination; its signing secret is in this answer only")
    async def create(self, state: State, conn: Conn, data: JSONBody[CreateTarget]) -> TargetCreated:
        created = await create_target(conn, state.settings, data)
        directory.changed(state)
        return created

    @get("/{name:str}", summary="One destination")
    async def get_one(self, state: State, conn: Conn, name: TargetName) -> TargetView:
        return await get_target(conn, state.settings, name)

    @patch("/{name:str}", summary="Change url, events, minPriority or limits (registry only)")
    async def update(
        self, state: State, conn: Conn, name: TargetName, data: JSONBody[UpdateTarget]
    ) -> TargetView:
        view = await update_target(conn, state.settings, name, data)
        directory.changed(state)
        return view

    @delete(
        "/{name:str}",
        status_code=200,
        summary="Delete; refused while unread notifications are routed to it (unless force)",
    )
    async def remove(
        self,
        state: State,
        conn: Conn,
        name: TargetName,
        force: Annotated[bool, QueryParameter(description="dead-letter its unread rows")] = False,
    ) -> Deleted:
        deleted = await delete_target(conn, state.settings, name, force)
        directory.changed(state)
        return deleted

    @post("/{name:str}/rotate-secret", status_code=200, summary="New secret; old one overlaps")
    async def rotate(self, state: State, conn: Conn, name: TargetName) -> RotatedSecret:
        rotated = await rotate_secret(conn, state.settings, name)
        directory.changed(state)
        return rotated

    @post("/{name:str}/enable", status_code=200, summary="Resume delivery")
    async def enable(self, state: State, conn: Conn, name: TargetName) -> TargetView:
        view = await set_enabled(conn, state.settings, name, True)
        directory.changed(state)
        return view

    @post("/{name:str}/disable", status_code=200, summary="Pause delivery; rows wait")
    async def disable(
        self, state: State, conn: Conn, name: TargetName, data: JSONBody[Disable]
    ) -> TargetView:
        view = await set_enabled(conn, state.settings, name, False, data.reason)
        directory.changed(state)
        return view

    @post("/{name:str}/test", status_code=200, summary="Send a signed PING now")
    async def test(self, state: State, conn: Conn, name: TargetName) -> PingResult:
        return await ping_target(conn, state.settings, name)

    @post("/{name:str}/replay", status_code=200, summary="Replay its notifications, filtered")
    async def replay(
        self, state: State, conn: Conn, name: TargetName, data: JSONBody[ReplayFilter]
    ) -> Queued:
        return await replay_target(conn, state.settings, name, data)

    @get("/{name:str}/health", summary="Backlog, last hour's outcomes and latency, breaker")
    async def health(self, state: State, conn: Conn, name: TargetName) -> TargetHealth:
        return await target_health(conn, state.settings, name)
