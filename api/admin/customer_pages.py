"""The Customers tab (/admin/customers) and the customer page (/admin/customers/{id}): quotes,
leads, linked user, audit trail; edit type, status and enrichment, deactivate and reactivate.
For admins and sales. Actions redirect back to the page (post/redirect/get) with a notice."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from api import directory
from api.admin.auth import staff_only
from api.admin.dashboard_support import flash
from api.admin.page_kit import PAGE_EXCEPTIONS, render
from api.admin.params import AdminRequest, Cursor
from api.transaction import Conn
from domain.custom_fields.definitions import list_fields
from domain.customers.lifecycle import UpdateCustomer, set_customer_status, update_customer
from domain.customers.queries import CustomerFilters, customer_detail, list_customers
from domain.enums import CustomerStatus, CustomerType, CustomFieldEntity

PAGE_SIZE = 25
Text = Annotated[str | None, QueryParameter(max_length=200)]
Short = Annotated[str, msgspec.Meta(max_length=200)]


class EditForm(msgspec.Struct):
    """The edit form: every field is posted; a blank text field clears it."""

    customer_type: CustomerType
    status: CustomerStatus
    company_name: Short = ""
    phone: Short = ""
    first_name: Short = ""
    last_name: Short = ""
    industry_type: Short = ""
    employee_count: Short = ""
    annual_revenue: Short = ""

    def command(self) -> UpdateCustomer:
        def text(value: str) -> str | None:
            return value.strip() or None

        return UpdateCustomer(
            customer_type=self.customer_type,
            status=self.status,
            company_name=text(self.company_name),
            phone=text(self.phone),
            first_name=text(self.first_name),
            last_name=text(self.last_name),
            industry_type=text(self.industry_type),
            employee_count=text(self.employee_count),
            annual_revenue=text(self.annual_revenue),
        )


def _pick(enum: Any, value: str | None) -> Any:
    return enum(value) if value and value in {e.value for e in enum} else None


def _customer_page(customer_id: uuid.UUID) -> str:
    return f"/admin/customers/{customer_id}"


class CustomerPagesController(Controller):
    path = "/admin/customers"
    guards = [staff_only]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTIONS

    @get("/")
    async def index(
        self,
        request: AdminRequest,
        conn: Conn,
        status: Text = None,
        customer_type: Annotated[str | None, QueryParameter(name="customerType")] = None,
        q: Text = None,
        cursor: Cursor = None,
    ) -> Template:
        filters = CustomerFilters(
            status=_pick(CustomerStatus, status),
            customer_type=_pick(CustomerType, customer_type),
            q=(q or "").strip() or None,
        )
        page = await list_customers(conn, filters, PAGE_SIZE, cursor)
        query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
        return render(
            request,
            "admin/customers.html",
            "customers",
            page=page,
            query=query,
            statuses=list(CustomerStatus),
            types=list(CustomerType),
            next_link=(
                "/admin/customers?" + urlencode({**query, "cursor": page.next_cursor})
                if page.next_cursor
                else None
            ),
            first_link="/admin/customers?" + urlencode(query) if cursor else None,
        )

    @get("/{customer_id:uuid}")
    async def page(
        self, request: AdminRequest, conn: Conn, customer_id: FromPath[uuid.UUID]
    ) -> Template:
        detail = await customer_detail(conn, customer_id)
        return render(
            request,
            "admin/customer.html",
            "customers",
            d=detail,
            c=detail.customer,
            fields=await list_fields(conn, CustomFieldEntity.CUSTOMER),
            types=list(CustomerType),
        )

    @post("/{customer_id:uuid}/edit", status_code=303)
    async def edit(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        customer_id: FromPath[uuid.UUID],
        data: URLEncodedBody[EditForm],
    ) -> Redirect:
        actor, routes = request.user.email, directory.routes(state)
        view = await update_customer(conn, customer_id, data.command(), actor, routes)
        flash(request, "ok", f"{view.email} saved.")
        return Redirect(_customer_page(customer_id), status_code=303)

    @post("/{customer_id:uuid}/deactivate", status_code=303)
    async def deactivate(
        self, request: AdminRequest, state: State, conn: Conn, customer_id: FromPath[uuid.UUID]
    ) -> Redirect:
        actor, routes = request.user.email, directory.routes(state)
        view = await set_customer_status(conn, customer_id, CustomerStatus.INACTIVE, actor, routes)
        flash(request, "ok", f"{view.email} is deactivated; their account is signed out.")
        return Redirect(_customer_page(customer_id), status_code=303)

    @post("/{customer_id:uuid}/reactivate", status_code=303)
    async def reactivate(
        self, request: AdminRequest, state: State, conn: Conn, customer_id: FromPath[uuid.UUID]
    ) -> Redirect:
        actor, routes = request.user.email, directory.routes(state)
        view = await set_customer_status(conn, customer_id, CustomerStatus.ACTIVE, actor, routes)
        flash(request, "ok", f"{view.email} is active again.")
        return Redirect(_customer_page(customer_id), status_code=303)
