"""/api/admin/monitoring: daily leads, status distribution, stale notifications, funnel."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from api.admin.auth import admin_only
from api.transaction import Conn
from domain.reporting.monitoring import Monitoring, monitoring


class MonitoringController(Controller):
    path = "/api/admin/monitoring"
    guards = [admin_only]
    tags = ["admin: monitoring"]

    @get("/", summary="Daily new leads, status distribution, stale notifications, funnel")
    async def read(
        self, conn: Conn, state: State, days: Annotated[int, QueryParameter(ge=1, le=366)] = 7
    ) -> Monitoring:
        return await monitoring(conn, days, state.settings.stale_after)
