"""The dashboard's pages at /admin/crm-sync: server-rendered (Jinja), read-only.

The changes they offer post to api/admin/actions.py and come back here (post/redirect/get).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from api.admin.auth import admin_only
from api.admin.dashboard_support import on_refused_action, take_flash
from api.admin.params import AdminRequest
from api.transaction import Conn
from domain.enums import (
    LeadStatus,
    LeadType,
    NotificationStatus,
    SubscriberStatus,
)
from domain.errors import DomainError
from domain.leads.queries import LeadFilters, LeadSort, list_leads
from domain.reporting.insights import lead_insights
from domain.reporting.monitoring import conversion_funnel, daily_new_leads
from domain.reporting.overview import (
    NotificationFilters,
    list_forms,
    list_notifications,
    list_subscribers,
    notification_attempts,
    stats_cards,
)
from domain.rules import FORM_RULES, form_types

TABS = ("leads", "forms", "subscribers", "notifications")
PAGE_SIZE = 25
CHART_DAYS = 14

Text = Annotated[str | None, QueryParameter(max_length=254)]


def _page_link(request: Request[Any, Any, Any], **changes: Any) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params.update({k: v for k, v in changes.items() if v is not None})
    return "/admin/crm-sync?" + urlencode(params)


class DashboardPagesController(Controller):
    path = "/admin/crm-sync"
    guards = [admin_only]
    include_in_schema = False
    exception_handlers = {DomainError: on_refused_action}  # type: ignore[dict-item]

    @get("/")
    async def page(
        self,
        request: AdminRequest,
        conn: Conn,
        tab: FromQuery[str] = "leads",
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        status: Text = None,
        type: Text = None,
        source: Text = None,
        min_score: Annotated[str | None, QueryParameter(name="minScore", max_length=3)] = None,
        assigned_to: Annotated[
            str | None, QueryParameter(name="assignedTo", max_length=254)
        ] = None,
        email: Text = None,
        sort: Text = None,
        form_type: Annotated[str | None, QueryParameter(name="formType", max_length=50)] = None,
        target_system: Annotated[
            str | None, QueryParameter(name="targetSystem", max_length=50)
        ] = None,
        read: Text = None,
    ) -> Template:
        tab = tab if tab in TABS else "leads"

        def pick(enum: Any, value: str | None) -> Any:
            return enum(value) if value and value in {e.value for e in enum} else None

        async def view(conn: Any) -> dict[str, Any]:
            context: dict[str, Any] = {
                "stats": await stats_cards(conn),
                "daily": await daily_new_leads(conn, CHART_DAYS),
                "funnel": await conversion_funnel(conn),
                "insights": await lead_insights(conn),  # issue 13 item 5: admin/_insights.html
            }
            if tab == "leads":
                filters = LeadFilters(
                    status=pick(LeadStatus, status),
                    type=pick(LeadType, type),
                    source=source or None,
                    min_score=int(min_score) if min_score and min_score.isdigit() else None,
                    assigned_to=assigned_to or None,
                    email=email or None,
                )
                order = pick(LeadSort, sort) or LeadSort.SCORE
                context["page"] = await list_leads(conn, filters, order, PAGE_SIZE, cursor)
            elif tab == "forms":
                context["page"] = await list_forms(
                    conn, PAGE_SIZE, cursor, form_type if form_type in FORM_RULES else None
                )
            elif tab == "subscribers":
                context["page"] = await list_subscribers(
                    conn, PAGE_SIZE, cursor, pick(SubscriberStatus, status)
                )
            else:
                filters_n = NotificationFilters(
                    pick(NotificationStatus, status),
                    target_system or None,
                    {"true": True, "false": False}.get(read or ""),
                )
                context["page"] = await list_notifications(conn, PAGE_SIZE, cursor, filters_n)
            return context

        context = await view(conn)
        page = context["page"]
        context.update(
            tab=tab,
            user=request.user,
            flash=take_flash(request),
            query=dict(request.query_params),
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            next_link=_page_link(request, cursor=page.next_cursor) if page.next_cursor else None,
            first_link=_page_link(request) if cursor else None,
            tab_link=lambda t: f"/admin/crm-sync?tab={t}",
            lead_statuses=list(LeadStatus),
            lead_types=list(LeadType),
            form_types=form_types(),
            subscriber_statuses=list(SubscriberStatus),
            notification_statuses=list(NotificationStatus),
            sorts=list(LeadSort),
            now=datetime.now(),
        )
        return Template("admin/dashboard.html", context=context)

    @get("/notifications/{notification_id:uuid}/attempts")
    async def attempts(
        self, request: AdminRequest, conn: Conn, notification_id: FromPath[uuid.UUID]
    ) -> Template:
        attempts = await notification_attempts(conn, notification_id)
        return Template(
            "admin/attempts.html",
            context={
                "attempts": attempts,
                "notification_id": notification_id,
                "user": request.user,
            },
        )
