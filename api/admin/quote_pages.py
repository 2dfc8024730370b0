"""The Quotes tab (/admin/quotes) and the quote page (/admin/quotes/{id}): lines with their
prices, the message thread with a reply box, the price form (a unit price per line, currency,
validUntil) and the status moves staff may make from the current status. Admins and sales.

Actions redirect back to the page (post/redirect/get) with a notice; a refused one (an illegal
move, a bad price) comes back as an error notice and writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
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
from api.admin.page_kit import PAGE_EXCEPTIONS, form_error, render
from api.admin.params import AdminRequest, Cursor
from api.admin.quotes import staff
from api.transaction import Conn
from domain.enums import QuoteStatus
from domain.quotes.commands import MoveQuote, PostMessage, PriceQuote, Reason
from domain.quotes.lifecycle import move_quote, post_message, price_quote
from domain.quotes.views import QuoteFilters, get_quote, list_quotes

PAGE_SIZE = 25
PRICE_FIELD = "price_"  # price_<line id>: one unit price input per line


class ReplyForm(msgspec.Struct):
    body: Annotated[str, msgspec.Meta(max_length=10_000)] = ""


class MoveForm(msgspec.Struct):
    status: QuoteStatus
    reason: Reason = ""


def _quote_page(quote_id: uuid.UUID) -> str:
    return f"/admin/quotes/{quote_id}"


def price_command(form: dict[str, Any]) -> PriceQuote:
    """The price form as the use case's command: the offer is valid to the end of the day
    (UTC) chosen in the date field."""
    try:
        day = date.fromisoformat(str(form.get("valid_until", "")).strip())
    except ValueError as exc:
        raise form_error(ValueError("validUntil: pick the last day the offer is valid")) from exc
    lines = [
        {"id": key[len(PRICE_FIELD) :], "unitPrice": str(value).strip()}
        for key, value in form.items()
        if key.startswith(PRICE_FIELD)
    ]
    try:
        return msgspec.convert(
            {
                "lines": lines,
                "currency": str(form.get("currency", "")).strip(),
                "validUntil": datetime.combine(day, time(23, 59, 59), UTC),
            },
            PriceQuote,
        )
    except (msgspec.ValidationError, ValueError) as exc:
        raise form_error(exc) from exc


class QuotePagesController(Controller):
    path = "/admin/quotes"
    guards = [staff_only]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTIONS

    @get("/")
    async def index(
        self,
        request: AdminRequest,
        conn: Conn,
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
        cursor: Cursor = None,
    ) -> Template:
        wanted = QuoteStatus(status) if status in set(QuoteStatus) else None
        page = await list_quotes(conn, staff(request.user), QuoteFilters(wanted), PAGE_SIZE, cursor)
        query = {"status": wanted.value} if wanted else {}
        return render(
            request,
            "admin/quotes.html",
            "quotes",
            page=page,
            query=query,
            statuses=list(QuoteStatus),
            next_link=(
                "/admin/quotes?" + urlencode({**query, "cursor": page.next_cursor})
                if page.next_cursor
                else None
            ),
            first_link="/admin/quotes?" + urlencode(query) if cursor else None,
        )

    @get("/{quote_id:uuid}")
    async def page(
        self, request: AdminRequest, conn: Conn, quote_id: FromPath[uuid.UUID]
    ) -> Template:
        quote = await get_quote(conn, quote_id, staff(request.user))
        return render(
            request,
            "admin/quote.html",
            "quotes",
            q=quote,
            can_price=QuoteStatus.QUOTED in quote.allowed_statuses,
            moves=[s for s in quote.allowed_statuses if s != QuoteStatus.QUOTED or quote.priced_at],
        )

    @post("/{quote_id:uuid}/price", status_code=303)
    async def price(
        self, request: AdminRequest, state: State, conn: Conn, quote_id: FromPath[uuid.UUID]
    ) -> Redirect:
        cmd = price_command(dict((await request.form()).items()))
        viewer = staff(request.user)
        quote = await price_quote(conn, quote_id, cmd, viewer, directory.routes(state))
        total = f"{quote.total:,.2f}" if quote.total is not None else "?"
        flash(request, "ok", f"{quote.reference} priced: {total} {quote.currency}.")
        return Redirect(_quote_page(quote_id), status_code=303)

    @post("/{quote_id:uuid}/messages", status_code=303)
    async def reply(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: URLEncodedBody[ReplyForm],
    ) -> Redirect:
        try:
            cmd = PostMessage(body=data.body)
        except ValueError as exc:
            raise form_error(exc) from exc
        viewer = staff(request.user)
        quote = await post_message(conn, quote_id, cmd, viewer, directory.routes(state))
        flash(request, "ok", f"Reply sent on {quote.reference}.")
        return Redirect(_quote_page(quote_id), status_code=303)

    @post("/{quote_id:uuid}/status", status_code=303)
    async def move(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        quote_id: FromPath[uuid.UUID],
        data: URLEncodedBody[MoveForm],
    ) -> Redirect:
        cmd = MoveQuote(status=data.status, reason=data.reason.strip() or None)
        viewer = staff(request.user)
        quote = await move_quote(conn, quote_id, cmd, data.status, viewer, directory.routes(state))
        flash(request, "ok", f"{quote.reference} is now {quote.status.value}.")
        return Redirect(_quote_page(quote_id), status_code=303)
