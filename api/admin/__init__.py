"""Signed-in side (auth; staff: leads, quotes, monitoring, dashboard; customers: their quotes),
registered by the app factory.

`build(settings)` gives what this feature adds to the app; see api/app.py. Everything below
sits behind a session (401 without one) and the CSRF check; admin routes add the admin guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.admin.actions import DashboardActionsController
from api.admin.auth import (
    LOGIN_RATE_LIMIT_STORE,
    SESSION_STORE,
    login,
    logout,
    security_middleware,
    whoami,
)
from api.admin.crm_sync import CrmSyncController
from api.admin.custom_fields import CustomFieldController
from api.admin.customer_pages import CustomerPagesController
from api.admin.customers import CustomerController
from api.admin.dashboard_support import EXCEPTION_HANDLERS
from api.admin.destination_pages import DestinationPagesController
from api.admin.field_pages import FieldPagesController
from api.admin.lead_pages import LeadPagesController
from api.admin.leads import LeadController
from api.admin.monitoring import MonitoringController
from api.admin.notifications import NotificationController
from api.admin.pages import DashboardPagesController
from api.admin.quote_pages import QuotePagesController
from api.admin.quotes import AdminQuoteController
from api.admin.signin import DashboardAuthController
from api.admin.targets import TargetController
from api.quotes import CustomerQuoteController
from infra.settings import Settings

API_DIR = Path(__file__).resolve().parent.parent
__all__ = ["LOGIN_RATE_LIMIT_STORE", "SESSION_STORE", "AdminSide", "build"]


@dataclass(frozen=True)
class AdminSide:
    route_handlers: list[Any]
    middleware: list[Any]
    template_config: Any = None


def build(settings: Settings) -> AdminSide:
    api = Router(
        path="/",
        route_handlers=[
            login,
            logout,
            whoami,
            LeadController,
            CustomerController,
            CustomFieldController,
            CrmSyncController,
            NotificationController,
            MonitoringController,
            AdminQuoteController,
            CustomerQuoteController,  # signed-in customers: same sessions and CSRF
            TargetController,
        ],
        middleware=security_middleware(settings),
    )
    pages = Router(
        path="/",
        route_handlers=[
            DashboardAuthController,
            DashboardPagesController,
            DashboardActionsController,
            LeadPagesController,
            CustomerPagesController,
            QuotePagesController,
            FieldPagesController,
            DestinationPagesController,
        ],
        middleware=security_middleware(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/admin/static", directories=[API_DIR / "static"], include_in_schema=False
    )
    templates = TemplateConfig(directory=API_DIR / "templates", engine=JinjaTemplateEngine)
    return AdminSide(route_handlers=[api, pages, static], middleware=[], template_config=templates)
