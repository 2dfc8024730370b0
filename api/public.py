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

from api.errors import PUBLIC_ERROR_RESPONSES
from api.observability import current_request_id
from domain.intake import idempotency
from domain.intake.commands import Register, SubmitForm, SubmitRfq, Subscribe
from domain.intake.forms import FormSubmitted, submit_form, submit_form_alone
from domain.intake.newsletter import Subscription, Unsubscription, subscribe, unsubscribe
from domain.intake.origin import Origin
from domain.intake.registration import Registered, register
from domain.intake.rfq import QuoteSubmitted, submit_rfq
from domain.intake.spam import decoy_form, decoy_quote, decoy_subscription, is_bot
from infra.db import Database
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
    state: State,
    use_case: Callable[[AsyncConnection], Awaitable[msgspec.Struct]],
    key: str | None,
    status_code: int,
    one_statement: bool = False,
) -> Response:
    settings: Settings = state.settings
    db: Database = state.db
    outcome = await idempotency.run(
        db,
        use_case,
        status_code=status_code,
        scope=request.url.path,
        key=key,
        request_body=await request.body() if key else b"",
        ttl=settings.idempotency_ttl,
        one_statement=one_statement,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    after_commit = state.get("after_commit")
    if after_commit is not None and not outcome.replayed:
        after_commit()
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
        if is_bot(data):  # the honeypot: answer like a success, write nothing
            return decoy(decoy_form(data))
        origin, routes = origin_of(request), state.settings.routes
        if idempotency_key is None:
            # The hot path. Without a key nothing shares the form's transaction: it is one
            # statement on its own, one round trip. Answers exactly as respond() does.
            result = await submit_form_alone(state.db, data, origin, routes)
            after_commit = state.get("after_commit")
            if after_commit is not None:
                after_commit()
            answer: Response[Any] = Response(
                content=msgspec.json.encode(result), status_code=201, media_type="application/json"
            )
            return answer
        return await respond(
            request,
            state,
            lambda conn: submit_form(conn, data, origin, routes),
            idempotency_key,
            201,
            one_statement=True,
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
        data: JSONBody[Register],
        idempotency_key: IdempotencyKey,
    ) -> Response[Registered]:
        origin, routes = origin_of(request), state.settings.routes
        return await respond(
            request, state, lambda conn: register(conn, data, origin, routes), idempotency_key, 201
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
        data: JSONBody[Subscribe],
        idempotency_key: IdempotencyKey,
    ) -> Response[Subscription]:
        if is_bot(data):  # the honeypot: answer like a success, write nothing
            return decoy(decoy_subscription(data))
        origin, routes = origin_of(request), state.settings.routes
        return await respond(
            request,
            state,
            lambda conn: subscribe(conn, data.email, origin, routes),
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
        data: JSONBody[Subscribe],
        idempotency_key: IdempotencyKey,
    ) -> Response[Unsubscription]:
        return await respond(
            request, state, lambda conn: unsubscribe(conn, data.email), idempotency_key, 200
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
        data: JSONBody[SubmitRfq],
        idempotency_key: IdempotencyKey,
    ) -> Response[QuoteSubmitted]:
        if is_bot(data):  # the honeypot: answer like a success, write nothing
            return decoy(decoy_quote(data))
        origin, routes = origin_of(request), state.settings.routes
        return await respond(
            request,
            state,
            lambda conn: submit_rfq(conn, data, origin, routes),
            idempotency_key,
            201,
        )
