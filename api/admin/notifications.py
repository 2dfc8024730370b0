"""/api/admin/crm-notifications: the outbox as staff see it (list, one, replay, attempts)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from api.admin.auth import admin_only
from api.admin.params import Cursor, Limit
from api.transaction import Conn
from domain.enums import NotificationStatus
from domain.reporting.overview import (
    Attempt,
    NotificationFilters,
    NotificationView,
    Page,
    get_notification,
    list_notifications,
    notification_attempts,
    replay_notification,
)


class NotificationController(Controller):
    path = "/api/admin/crm-notifications"
    guards = [admin_only]
    tags = ["admin: notifications"]

    @get("/", summary="List notifications (status, targetSystem, read; keyset pagination)")
    async def index(
        self,
        conn: Conn,
        status: FromQuery[NotificationStatus | None] = None,
        target_system: Annotated[
            str | None, QueryParameter(name="targetSystem", max_length=50)
        ] = None,
        read: FromQuery[bool | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Page:
        filters = NotificationFilters(status, target_system, read)
        return await list_notifications(conn, limit, cursor, filters)

    @get("/{notification_id:uuid}", summary="One notification")
    async def get_one(self, conn: Conn, notification_id: FromPath[uuid.UUID]) -> NotificationView:
        return await get_notification(conn, notification_id)

    @post("/{notification_id:uuid}/replay", status_code=200, summary="Send a FAILED one again")
    async def replay(self, conn: Conn, notification_id: FromPath[uuid.UUID]) -> NotificationView:
        return await replay_notification(conn, notification_id)

    @get("/{notification_id:uuid}/attempts", summary="Delivery attempts of a notification")
    async def attempts(self, conn: Conn, notification_id: FromPath[uuid.UUID]) -> list[Attempt]:
        return await notification_attempts(conn, notification_id)
