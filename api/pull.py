"""Pull mode (the seed's section 8) for target systems that poll instead of receiving pushes."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, QueryParameter

from api.transaction import Conn
from domain.errors import NotFound
from domain.outbox.delivery import acknowledge
from domain.outbox.queries import list_for_target
from infra.settings import Settings


def target_for_key(request: Request, settings: Settings) -> str:
    """The target system whose API key the request carries (Bearer token or X-API-Key)."""
    auth = request.headers.get("authorization", "")
    key = (
        auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
    )
    if key:
        for target in settings.targets:
            if target.api_key is not None and hmac.compare_digest(
                target.api_key.get().encode(), key.encode()
            ):
                return target.name
    raise NotAuthorizedException("a target system's API key is required")


class PullController(Controller):
    path = "/api/v1/crm-notifications"
    tags = ["pull"]

    @get("/", summary="Notifications of a target system, highest priority then oldest first")
    async def list_notifications(
        self,
        request: Request,
        state: State,
        conn: Conn,
        target_system: Annotated[str, QueryParameter(name="targetSystem", max_length=50)],
        read: Annotated[bool | None, QueryParameter()] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        if target_for_key(request, state.settings) != target_system:
            raise PermissionDeniedException("this API key belongs to another target system")
        return await list_for_target(conn, target_system, read, limit)

    @post("/{notification_id:uuid}/ack", status_code=200, summary="Acknowledge a notification")
    async def ack(
        self,
        request: Request,
        state: State,
        conn: Conn,
        notification_id: FromPath[uuid.UUID],
    ) -> dict[str, Any]:
        target = target_for_key(request, state.settings)
        if not await acknowledge(conn, target, notification_id):
            raise NotFound(f"no notification {notification_id} for {target}")
        return {"id": str(notification_id), "read": True}
