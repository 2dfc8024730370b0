"""/api/admin/customers: list, show, edit, deactivate and reactivate customers (admin, sales)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api import directory
from api.admin.auth import staff_only
from api.admin.params import AdminRequest, Cursor, Limit
from api.transaction import Conn
from domain.custom_fields.values import filter_params
from domain.customers.lifecycle import UpdateCustomer, set_customer_status, update_customer
from domain.customers.queries import (
    CustomerDetail,
    CustomerFilters,
    CustomerPage,
    CustomerView,
    customer_detail,
    list_customers,
)
from domain.enums import CustomerStatus, CustomerType


class CustomerController(Controller):
    path = "/api/admin/customers"
    guards = [staff_only]
    tags = ["admin: customers"]

    @get(
        "/",
        summary="List customers, newest first (filters, cf.<key>=value, keyset pagination)",
    )
    async def index(
        self,
        request: AdminRequest,
        conn: Conn,
        status: FromQuery[CustomerStatus | None] = None,
        customer_type: Annotated[CustomerType | None, QueryParameter(name="customerType")] = None,
        source: Annotated[str | None, QueryParameter(max_length=50)] = None,
        email: Annotated[str | None, QueryParameter(max_length=254)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> CustomerPage:
        custom = filter_params(dict(request.query_params))
        filters = CustomerFilters(status, customer_type, source, email, q, custom)
        return await list_customers(conn, filters, limit, cursor)

    @get("/{customer_id:uuid}", summary="One customer: linked user, leads, quotes, audit trail")
    async def get_one(self, conn: Conn, customer_id: FromPath[uuid.UUID]) -> CustomerDetail:
        return await customer_detail(conn, customer_id)

    @patch("/{customer_id:uuid}", summary="Edit a customer (audited, emits CUSTOMER_UPDATED)")
    async def update(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        customer_id: FromPath[uuid.UUID],
        data: JSONBody[UpdateCustomer],
    ) -> CustomerView:
        return await update_customer(
            conn, customer_id, data, request.user.email, directory.routes(state)
        )

    @post(
        "/{customer_id:uuid}/deactivate",
        status_code=200,
        summary="INACTIVE: the linked user goes inactive too (emits CUSTOMER_DEACTIVATED)",
    )
    async def deactivate(
        self, request: AdminRequest, state: State, conn: Conn, customer_id: FromPath[uuid.UUID]
    ) -> CustomerView:
        return await set_customer_status(
            conn, customer_id, CustomerStatus.INACTIVE, request.user.email, directory.routes(state)
        )

    @post(
        "/{customer_id:uuid}/reactivate",
        status_code=200,
        summary="ACTIVE again, with the linked user (emits CUSTOMER_UPDATED)",
    )
    async def reactivate(
        self, request: AdminRequest, state: State, conn: Conn, customer_id: FromPath[uuid.UUID]
    ) -> CustomerView:
        return await set_customer_status(
            conn, customer_id, CustomerStatus.ACTIVE, request.user.email, directory.routes(state)
        )
