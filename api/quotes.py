"""/api/v1/quotes: a signed-in customer's own quotes (same session and CSRF as staff).

Another customer's quote is a 404. Handlers parse, call one use case, answer."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from api import directory
from api.admin.auth import customer_only
from api.admin.params import Cursor, Limit
from api.transaction import Conn
from domain.accounts.users import SessionUser
from domain.enums import QuoteActor, QuoteStatus
from domain.quotes.commands import Decision, PostMessage
from domain.quotes.lifecycle import move_quote, post_message
from domain.quotes.views import QuoteDetail, QuoteFilters, QuotePage, Viewer, get_quote, list_quotes

CustomerRequest = Request[SessionUser, Any, Any]


def customer(user: SessionUser) -> Viewer:
    return Viewer(QuoteActor.CUSTOMER, user.email, user.id)


async def decide(
    request: CustomerRequest,
    state: State,
    conn: Conn,
    quote_id: uuid.UUID,
    data: Decision | None,
    target: QuoteStatus,
) -> QuoteDetail:
    """The customer's accept or reject: one move, checked against the rules."""
    viewer = customer(request.user)
    routes = directory.routes(state)
    return await move_quote(conn, quote_id, data or Decision(), target, viewer, routes)


class CustomerQuoteController(Controller):
    path = "/api/v1/quotes"
    guards = [customer_only]
    tags = ["customer: quotes"]

    @get("/", summary="My quotes, newest first (keyset pagination)")
    async def index(
        self, request: CustomerRequest, conn: Conn, limit: Limit = 20, cursor: Cursor = None
    ) -> QuotePage:
        return await list_quotes(conn, customer(request.user), QuoteFilters(), limit, cursor)

    @get("/{quote_id:uuid}", summary="One of my quotes: lines, history, messages")
    async def get_one(
        self, request: CustomerRequest, conn: Conn, quote_id: FromPath[uuid.UUID]
    ) -> QuoteDetail:
        return await get_quote(conn, quote_id, customer(request.user))

    @post(
        "/{quote_id:uuid}/messages", status_code=201, summary="Write to sales (opens a negotiation)"
    )
    async def message(
        self,
        request: CustomerRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[PostMessage],
    ) -> QuoteDetail:
        viewer = customer(request.user)
        return await post_message(conn, quote_id, data, viewer, directory.routes(state))

    @post("/{quote_id:uuid}/accept", status_code=200, summary="Accept a QUOTED quote")
    async def accept(
        self,
        request: CustomerRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> QuoteDetail:
        return await decide(request, state, conn, quote_id, data, QuoteStatus.ACCEPTED)

    @post("/{quote_id:uuid}/reject", status_code=200, summary="Reject a QUOTED quote")
    async def reject(
        self,
        request: CustomerRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[Decision | None] = None,
    ) -> QuoteDetail:
        return await decide(request, state, conn, quote_id, data, QuoteStatus.REJECTED)
