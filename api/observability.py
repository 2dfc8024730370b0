"""The API's observability: request ids in the log context, /metrics, submission counts.

- `edge` takes the caller's X-Request-ID (or makes one), binds it to the structlog context of
  the request, echoes it in the response, adds the security headers, counts public
  submissions and the outbox rows they committed, and times every request by route and status.
- `MetricsController` is Litestar's PrometheusController plus the outbox gauges read from the
  database at scrape time.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar

from litestar import Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.logging.config import LoggingConfig
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram

from api import directory
from api.protection import security_headers
from domain.outbox.queries import unread_by_target
from domain.rules import FORM_RULES
from infra.db import Database
from infra.logs import bind_request_id, clear_context
from infra.metrics import (
    SUBMISSIONS,
    OutboxCollector,
    count_committed,
    exposition,
    new_request_id,
    track_notifications,
)
from infra.settings import Settings

log = logging.getLogger(__name__)
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


def current_request_id() -> str | None:
    """The id of the request being served (set by the `edge` ASGI layer below)."""
    return _request_id.get()


def result_of(status: int, replayed: bool) -> str:
    if 200 <= status < 300:
        return "replayed" if replayed else "accepted"
    return {409: "conflict", 413: "too_large", 429: "rate_limited"}.get(
        status, "error" if status >= 500 else "invalid"
    )


def _form_type(path: str, scope: Scope) -> str:
    """The form type of a submission, from the body the handler already decoded.

    Never decodes anything: the JSON Litestar parsed for the handler (valid or not) is kept
    in the scope; a body that was never decoded (refused before, or undecodable) is "unknown".
    """
    if path != FORMS_PATH:
        return SUBMISSION_PATHS[path]
    decoded = ScopeState.from_scope(scope).json
    value = decoded.get("formType") if isinstance(decoded, dict) else None
    return value if isinstance(value, str) and value in FORM_RULES else "unknown"


REQUESTS = Counter(
    "crm_api_requests_total", "Total requests", ["method", "path", "status_code", "app_name"]
)
REQUEST_ERRORS = Counter(
    "crm_api_requests_error_total",
    "Total errors in requests (5xx)",
    ["method", "path", "status_code", "app_name"],
)
REQUEST_DURATION = Histogram(
    "crm_api_request_duration_seconds",
    "Request duration, in seconds",
    ["method", "path", "status_code", "app_name"],
)
IN_PROGRESS = Gauge(
    "crm_api_requests_in_progress",
    "Requests being served",
    ["method", "path", "app_name"],
    multiprocess_mode="livesum",
)
APP_NAME = "crm-sync"
UNTIMED = ("/metrics", "/static", "/schema")


def edge(app: ASGIApp) -> ASGIApp:
    """Everything each HTTP request needs on its way in and out, as one plain ASGI layer.

    Request id (the caller's valid X-Request-ID or a new one: bound to the log context, echoed
    in the response), security headers, public submission counts and the outbox rows they
    committed, and request count and duration by route template and status. One layer instead
    of Litestar's PrometheusMiddleware plus two of ours: bench/forms_submit.py measured the
    three at about a third of the API's CPU per request, this one at a fraction of that.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]  # type: ignore[typeddict-item]
        request_id = _incoming_request_id(scope) or new_request_id()
        token = _request_id.set(request_id)
        clear_context()
        bind_request_id(request_id)
        submission = method == "POST" and path in SUBMISSION_PATHS
        pending = track_notifications()
        extra = [(b"x-request-id", request_id.encode()), *security_headers(path)]
        status, replayed, answered = 500, False, False
        timed = not path.startswith(UNTIMED)
        template: str = scope.get("path_template", path)
        if timed:
            IN_PROGRESS.labels(method, template, APP_NAME).inc()
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status, replayed, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                headers = list(message.get("headers", ()))
                names = {k.lower() for k, _ in headers}
                replayed = b"idempotent-replayed" in names
                headers.extend(h for h in extra if h[0] not in names)
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        except BaseException as exc:
            # Raised by a middleware further in (a 401 from the session check): Litestar's
            # outermost handler answers it; count it with the status it will answer.
            if isinstance(exc, HTTPException) and not answered:
                status = exc.status_code
            raise
        finally:
            try:
                seconds = time.perf_counter() - started
                if 200 <= status < 300:
                    count_committed(pending)  # a 2xx means the rows were committed
                if submission:
                    SUBMISSIONS.labels(_form_type(path, scope), result_of(status, replayed)).inc()
                if timed:
                    labels = (method, template, str(status), APP_NAME)
                    REQUEST_DURATION.labels(*labels).observe(seconds)
                    REQUESTS.labels(*labels).inc()
                    if status >= 500:
                        REQUEST_ERRORS.labels(*labels).inc()
            except Exception:  # counting must never turn an answer into an error
                log.exception("request metrics failed on %s %s", method, path)
            finally:
                if timed:
                    IN_PROGRESS.labels(method, template, APP_NAME).dec()
                clear_context()
                _request_id.reset(token)

    return middleware


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


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
        targets = [r.target for r in directory.routes(state)]
        body = exposition(settings.metrics_dir, OutboxCollector(unread, targets))
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def litestar_logging() -> LoggingConfig:
    """Litestar's own logger writes through the root handler (infra.logs), not its own."""
    return LoggingConfig(
        configure_root_logger=False,
        handlers={
            "console": {"class": "logging.NullHandler"},
            "queue_listener": {"class": "logging.NullHandler"},
        },
        loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
    )
