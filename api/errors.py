"""Every error leaves the API as JSON naming the field at fault, mapped in one table."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, Reference
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from domain.errors import (
    Conflict,
    DomainError,
    DuplicateEmail,
    DuplicateTarget,
    IdempotencyKeyReused,
    IllegalTransition,
    NotFound,
    ReadOnlyTarget,
    SecretStorageUnavailable,
    SignatureRejected,
    TargetInUse,
)
from infra.db import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from infra.logs import escape_control

log = logging.getLogger(__name__)

STATUS_FOR: dict[type[DomainError], tuple[int, str]] = {
    DuplicateEmail: (HTTP_409_CONFLICT, "duplicate_email"),
    IdempotencyKeyReused: (HTTP_409_CONFLICT, "idempotency_key_reused"),
    IllegalTransition: (HTTP_409_CONFLICT, "illegal_transition"),
    NotFound: (HTTP_404_NOT_FOUND, "not_found"),
    DuplicateTarget: (HTTP_409_CONFLICT, "duplicate_target"),
    ReadOnlyTarget: (HTTP_409_CONFLICT, "read_only_target"),
    TargetInUse: (HTTP_409_CONFLICT, "target_in_use"),
    SecretStorageUnavailable: (HTTP_409_CONFLICT, "secret_key_missing"),
    Conflict: (HTTP_409_CONFLICT, "conflict"),
    SignatureRejected: (HTTP_401_UNAUTHORIZED, "bad_signature"),
}


def error_body(
    status: int, error: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    errors = errors or []
    return {
        "status": status,
        "error": error,
        "detail": detail,
        "field": errors[0]["field"] if errors else None,
        "errors": errors,
    }


# Handler parameters that come from headers, reported under the header's own name.
HEADER_NAMES = {"idempotency_key": "Idempotency-Key"}
_MISSING = re.compile(r"missing required field `([^`]+)`")
_POST_INIT = re.compile(r"^(\w+) must ")


def _field_of(item: dict[str, Any]) -> str:
    """The JSON path of the field at fault, in the request's own (camelCase) names."""
    if "field" in item:  # already a path in the request's names (api/inputs.py)
        return str(item["field"])
    key = str(item.get("key") or "")
    if key == "data":  # Litestar's name for the whole request body
        key = ""
    # Query parameters are reported in the request's camelCase, like body fields (minScore).
    key = HEADER_NAMES.get(key) or re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
    message = str(item.get("message", ""))
    missing = _MISSING.search(message)
    if missing:
        return f"{key}.{missing.group(1)}" if key else missing.group(1)
    post_init = _POST_INIT.match(message)
    if post_init and not key:
        return post_init.group(1)
    return key or "body"


def on_validation(_: Request, exc: ValidationException) -> Response:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [{"field": _field_of(e), "message": str(e.get("message", ""))} for e in extra]
    if not errors:
        # Litestar reports undecodable JSON without a key: the body as a whole is at fault.
        errors = [{"field": "body", "message": exc.detail}]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Response(
        error_body(HTTP_400_BAD_REQUEST, "invalid_request", detail, errors), status_code=400
    )


def on_http(_: Request, exc: HTTPException) -> Response:
    # Framework-raised client errors (undecodable JSON, 413, 415) concern the body as a whole.
    errors = [{"field": "body", "message": exc.detail}] if 400 <= exc.status_code < 500 else None
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "RateLimit-Reset" in headers:
        headers["Retry-After"] = headers["RateLimit-Reset"]  # seconds until a slot frees
    return Response(
        error_body(exc.status_code, "http_error", exc.detail, errors),
        status_code=exc.status_code,
        headers=headers,
    )


def on_domain(_: Request, exc: DomainError) -> Response:
    status, code = next(
        (STATUS_FOR[t] for t in type(exc).__mro__ if t in STATUS_FOR),
        (HTTP_400_BAD_REQUEST, "invalid_request"),
    )
    errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
    return Response(error_body(status, code, exc.message, errors), status_code=status)


def on_database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is down or over the time budget: a short, retryable answer, no traceback
    (the outage is one known condition, and its messages may carry connection details)."""
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        escape_control(request.url.path),  # a client's path: no forged lines
        type(exc).__name__,
    )
    return Response(
        error_body(
            HTTP_503_SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry later",
        ),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, escape_control(request.url.path))
    return Response(
        error_body(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal server error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


class FieldError(msgspec.Struct):
    field: str | None
    message: str


class ErrorBody(msgspec.Struct):
    """What every error answers: the status, a code, a sentence, and the fields at fault."""

    status: int
    error: str
    detail: str
    field: str | None
    errors: list[FieldError]


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


# The error answers of the public write endpoints, documented in the OpenAPI schema.
PUBLIC_ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _spec("Bad input: `field` names the JSON path at fault; nothing was written"),
    409: _spec(
        "Conflict: an account with this email exists, or an Idempotency-Key reused with another body"
    ),
    413: _spec("Body over the size limit (64 KiB)"),
    429: _spec("Too many requests from this client; see Retry-After"),
    503: _spec("The database is unavailable; see Retry-After"),
}


def document_error_shape(schema: OpenAPI) -> None:
    """Every documented 400 says what we answer (ErrorBody), not Litestar's default shape.

    Litestar documents a 400 on each operation with parameters as {status_code, detail,
    extra}; on_validation answers ErrorBody. A client or a schema checker (the fuzz test)
    reading the document would otherwise be told the wrong shape.
    """
    bad_input = OpenAPIResponse(
        description="Bad input: `field` names the parameter or JSON path at fault",
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/ErrorBody")
            )
        },
    )
    for item in (schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None or not operation.responses or "400" not in operation.responses:
                continue
            documented = operation.responses["400"]
            if isinstance(documented, OpenAPIResponse) and "ErrorBody" not in str(
                documented.content
            ):
                operation.responses["400"] = bad_input


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ValidationException: on_validation,
    HTTPException: on_http,
    DomainError: on_domain,
    **dict.fromkeys(DATABASE_UNAVAILABLE, on_database_unavailable),
    Exception: on_unexpected,
}
