"""The public write API on the seed's paths. Handlers parse, call one use case, answer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncConnection

from api import directory
from api.errors import PUBLIC_ERROR_RESPONSES
from api.observability import current_request_id
from api.transaction import Conn, after_commit, unit_of_work
from domain.intake import idempotency
from domain.intake.commands import Register, SubmitForm, SubmitRfq, Subscribe
from domain.intake.forms import FormSubmitted, submit_form, submit_form_alone
from domain.intake.newsletter import Subscription, Unsubscription, subscribe, unsubscribe
from domain.intake.origin import Origin
from domain.intake.registration import Registered, register
from domain.intake.rfq import QuoteSubmitted, submit_rfq
from domain.intake.spam import decoy_quote, decoy_subscription, is_bot, record_spam_form
from infra.settings import Settings

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeats with the same key within 24 h return the first response.",
    ),
]


def origin_of(request: Request) -> Origin:
    request_id = current_request_id() or request.headers.get("x-request-id") or uuid.uuid4().hex
    return Origin(
        ip_address=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        request_id=request_id[:64],
    )


async def respond(
    request: Request,
    conn: AsyncConnection,
    use_case: Callable[[AsyncConnection], Awaitable[msgspec.Struct]],
    key: str | None,
    status_code: int,
) -> Response:
    """Run the use case in the request's transaction (api/transaction.py), which also holds
    the Idempotency-Key record, and answer with its result or the replayed first answer."""
    settings: Settings = request.app.state.settings
    outcome = await idempotency.run(
        conn,
        use_case,
        status_code=status_code,
        scope=request.url.path,
        key=key,
        request_body=await request.body() if key else b"",
        ttl=settings.idempotency_ttl,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(
        content=outcome.body,
        status_code=outcome.status_code,
        media_type="application/json",
        headers=headers,
    )


def decoy(result: msgspec.Struct) -> Response:
    return Response(
        content=msgspec.json.encode(result), status_code=201, media_type="application/json"
    )


class PublicController(Controller):
    tags = ["public"]

    @post(
        "/api/forms/submit",
        status_code=201,
        summary="Submit a website form",
        responses=PUBLIC_ERROR_RESPONSES,
    )
    async def submit_form(
        self,
        request: Request,
        state: State,
        data: JSONBody[SubmitForm],
        idempotency_key: IdempotencyKey,
    ) -> Response[FormSubmitted]:
        # The one handler that takes the boundary as a context manager instead of a dependency:
        # a generator dependency per request cost the hot path about 15 % of its throughput
        # (bench/forms_submit.py, 3 alternating runs), and most posts never open it.
        if is_bot(data):  # the honeypot: answer like a success, record the form as SPAM
            return decoy(await record_spam_form(state.db, data, origin_of(request)))
        origin, routes = origin_of(request), directory.routes(state)
        if idempotency_key is None:
            # The hot path. Without a key nothing shares the form's transaction: it is one
            # statement (group commit), committed when this returns; the request's transaction
            # is never opened. Answers exactly as respond() does.
            result = await submit_form_alone(state.db, data, origin, routes)
            if result.notification_ids:
                after_commit(state)
            answer: Response[Any] = Response(
                content=msgspec.json.encode(result), status_code=201, media_type="application/json"
            )
            return answer
        async with unit_of_work(state) as transaction:
            return await respond(
                request,
                await transaction.connection(),
                lambda conn: submit_form(conn, data, origin, routes),
                idempotency_key,
                201,
            )

    @post(
        "/api/auth/register",
        status_code=201,
        summary="Register a customer account",
        responses=PUBLIC_ERROR_RESPONSES,
    )
    async def register(
        self,
        request: Request,
        state: State,
        conn: Conn,
        data: JSONBody[Register],
        idempotency_key: IdempotencyKey,
    ) -> Response[Registered]:
        origin, routes = origin_of(request), directory.routes(state)
        return await respond(
            request, conn, lambda c: register(c, data, origin, routes), idempotency_key, 201
        )

    @post(
        "/api/newsletter-subscribe",
        status_code=201,
        summary="Subscribe to the newsletter",
        responses=PUBLIC_ERROR_RESPONSES,
    )
    async def newsletter_subscribe(
        self,
        request: Request,
        state: State,
        conn: Conn,
        data: JSONBody[Subscribe],
        idempotency_key: IdempotencyKey,
    ) -> Response[Subscription]:
        if is_bot(data):  # the honeypot: answer like a success, write nothing
            return decoy(decoy_subscription(data))
        origin, routes = origin_of(request), directory.routes(state)
        return await respond(
            request,
            conn,
            lambda c: subscribe(c, data.email, origin, routes),
            idempotency_key,
            201,
        )

    @post(
        "/api/newsletter-unsubscribe",
        status_code=200,
        summary="Unsubscribe from the newsletter",
        responses=PUBLIC_ERROR_RESPONSES,
    )
    async def newsletter_unsubscribe(
        self,
        request: Request,
        state: State,
        conn: Conn,
        data: JSONBody[Subscribe],
        idempotency_key: IdempotencyKey,
    ) -> Response[Unsubscription]:
        return await respond(
            request, conn, lambda c: unsubscribe(c, data.email), idempotency_key, 200
        )

    @post(
        "/api/v1/rfq/submit",
        status_code=201,
        summary="Submit a request for quotation",
        responses=PUBLIC_ERROR_RESPONSES,
    )
    async def submit_rfq(
        self,
        request: Request,
        state: State,
        conn: Conn,
        data: JSONBody[SubmitRfq],
        idempotency_key: IdempotencyKey,
    ) -> Response[QuoteSubmitted]:
        if is_bot(data):  # the honeypot: answer like a success, write nothing
            return decoy(decoy_quote(data))
        origin, routes = origin_of(request), directory.routes(state)
        return await respond(
            request,
            conn,
            lambda c: submit_rfq(c, data, origin, routes),
            idempotency_key,
            201,
        )
