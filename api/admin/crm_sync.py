"""/api/admin/crm-sync (the seed's admin endpoint), notifications and monitoring."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, HttpMethod, get, post, route
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter

from api.admin.auth import admin_only
from api.admin.transaction import run
from domain.enums import NotificationStatus
from domain.reporting.monitoring import Monitoring, monitoring
from domain.reporting.overview import (
    Attempt,
    CrmSync,
    CrmSyncCursors,
    NotificationFilters,
    NotificationView,
    Page,
    crm_sync,
    get_notification,
    list_notifications,
    notification_attempts,
    replay_notification,
)
from infra.keyset import MAX_PAGE_SIZE

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="page size")]
Cursor = Annotated[str | None, QueryParameter(max_length=500)]


def _cursor(name: str) -> Any:
    return QueryParameter(name=f"{name}Cursor", max_length=500, required=False)


class CrmSyncController(Controller):
    path = "/api/admin/crm-sync"
    guards = [admin_only]
    tags = ["admin: crm-sync"]

    async def _answer(self, state: State, limit: int, cursors: CrmSyncCursors) -> CrmSync:
        return await run(state, lambda conn: crm_sync(conn, limit, cursors))

    @route(
        "/",
        http_method=[HttpMethod.GET, HttpMethod.POST],
        status_code=200,
        summary="CRM stats and the latest leads, forms, subscribers, notifications (GET or POST)",
    )
    async def read(
        self,
        state: State,
        limit: Limit = 20,
        leads_cursor: Annotated[str | None, _cursor("leads")] = None,
        forms_cursor: Annotated[str | None, _cursor("forms")] = None,
        subscribers_cursor: Annotated[str | None, _cursor("subscribers")] = None,
        notifications_cursor: Annotated[str | None, _cursor("notifications")] = None,
    ) -> CrmSync:
        cursors = CrmSyncCursors(
            leads_cursor, forms_cursor, subscribers_cursor, notifications_cursor
        )
        return await self._answer(state, limit, cursors)


class NotificationController(Controller):
    path = "/api/admin/crm-notifications"
    guards = [admin_only]
    tags = ["admin: notifications"]

    @get("/", summary="List notifications (status, targetSystem, read; keyset pagination)")
    async def index(
        self,
        state: State,
        status: FromQuery[NotificationStatus | None] = None,
        target_system: Annotated[
            str | None, QueryParameter(name="targetSystem", max_length=50)
        ] = None,
        read: FromQuery[bool | None] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Page:
        filters = NotificationFilters(status, target_system, read)
        return await run(state, lambda conn: list_notifications(conn, limit, cursor, filters))

    @get("/{notification_id:uuid}", summary="One notification")
    async def get_one(self, state: State, notification_id: FromPath[uuid.UUID]) -> NotificationView:
        return await run(state, lambda conn: get_notification(conn, notification_id))

    @post("/{notification_id:uuid}/replay", status_code=200, summary="Send a FAILED one again")
    async def replay(self, state: State, notification_id: FromPath[uuid.UUID]) -> NotificationView:
        view = await run(state, lambda conn: replay_notification(conn, notification_id))
        after_commit = state.get("after_commit")
        if after_commit is not None:
            after_commit()  # wake the dispatcher, best-effort
        return view

    @get("/{notification_id:uuid}/attempts", summary="Delivery attempts of a notification")
    async def attempts(self, state: State, notification_id: FromPath[uuid.UUID]) -> list[Attempt]:
        return await run(state, lambda conn: notification_attempts(conn, notification_id))


class MonitoringController(Controller):
    path = "/api/admin/monitoring"
    guards = [admin_only]
    tags = ["admin: monitoring"]

    @get("/", summary="Daily new leads, status distribution, stale notifications, funnel")
    async def read(
        self, state: State, days: Annotated[int, QueryParameter(ge=1, le=366)] = 7
    ) -> Monitoring:
        return await run(state, lambda conn: monitoring(conn, days, state.settings.stale_after))
