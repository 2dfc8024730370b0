"""The API's observability: request ids in the log context, /metrics, submission counts.

- `RequestContextMiddleware` takes the caller's X-Request-ID (or makes one), binds it to the
  structlog context of the request, echoes it in the response, and counts public submissions
  and the outbox rows they committed.
- `MetricsController` is Litestar's PrometheusController plus the outbox gauges read from the
  database at scrape time; `prometheus_config` times every request by route and status.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.logging.config import LoggingConfig
from litestar.middleware import ASGIMiddleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST

from domain.config import Settings
from domain.db import Database
from domain.enums import FormType
from domain.logs import bind_request_id, clear_context
from domain.metrics import (
    SUBMISSIONS,
    OutboxCollector,
    count_committed,
    exposition,
    new_request_id,
    track_notifications,
    unread_by_target,
)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_request_id: ContextVar[str | None] = ContextVar("crm_request_id", default=None)

# Public write endpoints and the form type they stand for (forms carry theirs in the body).
FORMS_PATH = "/api/forms/submit"
SUBMISSION_PATHS = {
    FORMS_PATH: "unknown",
    "/api/auth/register": "registration",
    "/api/newsletter-subscribe": "newsletter_subscribe",
    "/api/newsletter-unsubscribe": "newsletter_unsubscribe",
    "/api/v1/rfq/submit": "rfq",
}
_FORM_TYPES = frozenset(t.value for t in FormType)


class _FormTypeOnly(msgspec.Struct):
    formType: Any = None  # the wire name


def current_request_id() -> str | None:
    """The id of the request being served (set by RequestContextMiddleware)."""
    return _request_id.get()


def result_of(status: int, replayed: bool) -> str:
    if 200 <= status < 300:
        return "replayed" if replayed else "accepted"
    return {409: "conflict", 413: "too_large", 429: "rate_limited"}.get(
        status, "error" if status >= 500 else "invalid"
    )


def _form_type(path: str, body: bytes) -> str:
    if path != FORMS_PATH:
        return SUBMISSION_PATHS[path]
    try:
        value = msgspec.json.decode(body, type=_FormTypeOnly).formType
    except msgspec.DecodeError:
        return "unknown"
    return value if isinstance(value, str) and value in _FORM_TYPES else "unknown"


class RequestContextMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = _incoming_request_id(scope) or new_request_id()
        token = _request_id.set(request_id)
        clear_context()
        bind_request_id(request_id)
        submission = scope.get("method") == "POST" and scope["path"] in SUBMISSION_PATHS
        pending = track_notifications()
        status, replayed = 500, False
        body = bytearray()

        async def receive_body() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.request" and len(body) < 65536:
                body.extend(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                replayed = any(k.lower() == b"idempotent-replayed" for k, _ in headers)
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        try:
            await next_app(
                scope, receive_body if scope["path"] == FORMS_PATH else receive, send_with_id
            )
        finally:
            if 200 <= status < 300:
                count_committed(pending)  # a 2xx means the rows were committed
            if submission:
                SUBMISSIONS.labels(
                    _form_type(scope["path"], bytes(body)), result_of(status, replayed)
                ).inc()
            clear_context()
            _request_id.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


def prometheus_config() -> PrometheusConfig:
    """Request count and duration by route template (not raw path) and status code."""
    return PrometheusConfig(
        app_name="crm-sync",
        prefix="crm_api",
        group_path=True,
        exclude=["^/metrics", "^/static", "^/schema"],
    )


class MetricsController(PrometheusController):
    """GET /metrics: every process's metrics (multiprocess dir) and the outbox gauges."""

    path = "/metrics"
    include_in_schema = False

    @get(include_in_schema=False)
    async def get(self, state: State) -> Response:  # type: ignore[override]
        settings: Settings = state.settings
        db: Database = state.db
        async with db.engine.connect() as conn:
            unread = await unread_by_target(conn)
        targets = [r.target for r in settings.routes]
        body = exposition(settings.metrics_dir, OutboxCollector(unread, targets))
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def litestar_logging() -> LoggingConfig:
    """Litestar's own logger writes through the root handler (domain.logs), not its own."""
    return LoggingConfig(
        configure_root_logger=False,
        handlers={
            "console": {"class": "logging.NullHandler"},
            "queue_listener": {"class": "logging.NullHandler"},
        },
        loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
    )
