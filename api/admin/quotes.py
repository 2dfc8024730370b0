"""/api/admin/quotes: staff answer quote requests. Handlers parse, call one use case, answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api import directory
from api.admin.auth import staff_only
from api.admin.params import AdminRequest, Cursor, Limit
from api.transaction import Conn
from domain.accounts.users import SessionUser
from domain.enums import QuoteActor, QuoteStatus
from domain.quotes.commands import MoveQuote, PostMessage, PriceQuote
from domain.quotes.lifecycle import move_quote, post_message, price_quote
from domain.quotes.views import QuoteDetail, QuoteFilters, QuotePage, Viewer, get_quote, list_quotes


def staff(user: SessionUser) -> Viewer:
    return Viewer(QuoteActor.STAFF, user.email, user.id)


class AdminQuoteController(Controller):
    path = "/api/admin/quotes"
    guards = [staff_only]
    tags = ["admin: quotes"]

    @get("/", summary="List quotes, newest first (keyset pagination)")
    async def index(
        self,
        request: AdminRequest,
        conn: Conn,
        status: FromQuery[QuoteStatus | None] = None,
        customer_id: Annotated[uuid.UUID | None, QueryParameter(name="customerId")] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> QuotePage:
        filters = QuoteFilters(status, customer_id)
        return await list_quotes(conn, staff(request.user), filters, limit, cursor)

    @get("/{quote_id:uuid}", summary="One quote: lines, events, messages")
    async def get_one(
        self, request: AdminRequest, conn: Conn, quote_id: FromPath[uuid.UUID]
    ) -> QuoteDetail:
        return await get_quote(conn, quote_id, staff(request.user))

    @post("/{quote_id:uuid}/price", status_code=200, summary="Price the lines (-> QUOTED)")
    async def price(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[PriceQuote],
    ) -> QuoteDetail:
        viewer = staff(request.user)
        return await price_quote(conn, quote_id, data, viewer, directory.routes(state))

    @post("/{quote_id:uuid}/messages", status_code=201, summary="Reply in the quote's thread")
    async def message(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[PostMessage],
    ) -> QuoteDetail:
        viewer = staff(request.user)
        return await post_message(conn, quote_id, data, viewer, directory.routes(state))

    @post("/{quote_id:uuid}/status", status_code=200, summary="Move a quote (allowed moves only)")
    async def status(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: JSONBody[MoveQuote],
    ) -> QuoteDetail:
        viewer = staff(request.user)
        return await move_quote(conn, quote_id, data, data.status, viewer, directory.routes(state))
