"""/api/admin/crm-sync: the seed's admin endpoint (stats and the latest rows of each list)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, HttpMethod, route
from litestar.params import QueryParameter

from api.admin.auth import admin_only
from api.admin.params import Limit
from api.transaction import Conn
from domain.reporting.overview import CrmSync, CrmSyncCursors, crm_sync


def _cursor(name: str) -> Any:
    return QueryParameter(name=f"{name}Cursor", max_length=500, required=False)


class CrmSyncController(Controller):
    path = "/api/admin/crm-sync"
    guards = [admin_only]
    tags = ["admin: crm-sync"]

    @route(
        "/",
        http_method=[HttpMethod.GET, HttpMethod.POST],
        status_code=200,
        summary="CRM stats and the latest leads, forms, subscribers, notifications (GET or POST)",
    )
    async def read(
        self,
        conn: Conn,
        limit: Limit = 20,
        leads_cursor: Annotated[str | None, _cursor("leads")] = None,
        forms_cursor: Annotated[str | None, _cursor("forms")] = None,
        subscribers_cursor: Annotated[str | None, _cursor("subscribers")] = None,
        notifications_cursor: Annotated[str | None, _cursor("notifications")] = None,
    ) -> CrmSync:
        cursors = CrmSyncCursors(
            leads_cursor, forms_cursor, subscribers_cursor, notifications_cursor
        )
        return await crm_sync(conn, limit, cursors)
