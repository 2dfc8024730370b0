"""The Destinations tab (/admin/destinations, admins only): each destination (env or registry)
with its health (domain/destinations/health.py), and its actions: send a test PING, disable
(with a reason) and enable, rotate the signing secret, replay its failed notifications.

A rotated secret is shown once, on the page that answers the rotation (never stored in the
session, never shown again); the other actions redirect back with a notice.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncConnection

from api import directory
from api.admin.auth import admin_only
from api.admin.dashboard_support import flash
from api.admin.page_kit import PAGE_EXCEPTIONS, render
from api.admin.params import AdminRequest
from api.transaction import Conn
from domain.destinations.health import target_health
from domain.destinations.ping import ping_target
from domain.destinations.registry import list_targets, rotate_secret, set_enabled
from domain.destinations.replay import ReplayFilter, replay_target
from domain.errors import DomainError
from infra.settings import Settings

PAGE = "/admin/destinations"
Name = FromPath[str]


class DisableForm(msgspec.Struct):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


async def _rows(conn: AsyncConnection, settings: Settings) -> list[tuple[object, object]]:
    return [
        (view, await target_health(conn, settings, view.name))
        for view in await list_targets(conn, settings)
    ]


class DestinationPagesController(Controller):
    path = PAGE
    guards = [admin_only]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTIONS

    @get("/")
    async def page(self, request: AdminRequest, state: State, conn: Conn) -> Template:
        return render(
            request,
            "admin/destinations.html",
            "destinations",
            targets=await _rows(conn, state.settings),
            secret=None,
        )

    @post("/{name:str}/test", status_code=303)
    async def test(self, request: AdminRequest, state: State, conn: Conn, name: Name) -> Redirect:
        result = await ping_target(conn, state.settings, name)
        ok = result.status is not None and 200 <= result.status < 300
        answer = f"HTTP {result.status}" if result.status is not None else "no answer"
        error = f": {result.error}" if result.error else ""
        flash(
            request,
            "ok" if ok else "error",
            f"Test PING to {name}: {answer} in {result.duration_ms:.0f} ms{error}.",
        )
        return Redirect(PAGE, status_code=303)

    @post("/{name:str}/disable", status_code=303)
    async def disable(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        name: Name,
        data: URLEncodedBody[DisableForm],
    ) -> Redirect:
        reason = data.reason.strip()
        if not reason:
            raise DomainError("give a reason to disable a destination", field="reason")
        await set_enabled(conn, state.settings, name, False, reason)
        directory.changed(state)
        flash(request, "ok", f"{name} is disabled ({reason}); its notifications wait.")
        return Redirect(PAGE, status_code=303)

    @post("/{name:str}/enable", status_code=303)
    async def enable(self, request: AdminRequest, state: State, conn: Conn, name: Name) -> Redirect:
        await set_enabled(conn, state.settings, name, True)
        directory.changed(state)
        flash(request, "ok", f"{name} is enabled; delivery resumes.")
        return Redirect(PAGE, status_code=303)

    @post("/{name:str}/rotate-secret", status_code=200)
    async def rotate(self, request: AdminRequest, state: State, conn: Conn, name: Name) -> Template:
        rotated = await rotate_secret(conn, state.settings, name)
        directory.changed(state)
        return render(
            request,
            "admin/destinations.html",
            "destinations",
            headers={"Cache-Control": "no-store"},
            targets=await _rows(conn, state.settings),
            secret={
                "name": name,
                "value": rotated.secret,
                "overlap": rotated.previous_secret_expires_at,
            },
        )

    @post("/{name:str}/replay", status_code=303)
    async def replay(self, request: AdminRequest, state: State, conn: Conn, name: Name) -> Redirect:
        queued = await replay_target(conn, state.settings, name, ReplayFilter())
        flash(request, "ok", f"{queued.queued} failed notification(s) to {name} queued again.")
        return Redirect(PAGE, status_code=303)
