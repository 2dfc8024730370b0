"""Sign-in for staff: server-side sessions, roles as guards, CSRF for cookie-authenticated
changes, and limits on password attempts. Litestar's own machinery, with the session and CSRF
parts hardened in api/admin/sessions.py (ids the server issued, rotated at sign-in, tokens
bound to the session)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import JSONBody
from litestar.security.session_auth import SessionAuth
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Guard

from api.admin.sessions import (
    IssuedSessionConfig,
    SessionBoundCSRFMiddleware,
    csrf_token_for,
    current_session_id,
    rotate_session,
)
from domain.accounts.throttle import clear_failures, locked_for, record_failure
from domain.accounts.users import SessionUser, authenticate, user_by_id
from domain.enums import UserRole
from infra.db import Database
from infra.settings import Settings

SESSION_KEY = "crm_session"
SESSION_HOURS = 8
CSRF_COOKIE, CSRF_HEADER = "csrftoken", "x-csrftoken"
# Opt keys that let a handler through without a session (login) or a CSRF token (login).
PUBLIC = {"exclude_from_auth": True, "exclude_from_csrf": True}

# Stores by name (api/app.py registers them, shared by every API process).
SESSION_STORE, LOGIN_RATE_LIMIT_STORE = "sessions", "login_rate_limit"
# Password guessing: 10 sign-in attempts per minute per client address, in its own store.
LOGIN_RATE_LIMIT = RateLimitConfig(rate_limit=("minute", 10), store=LOGIN_RATE_LIMIT_STORE)


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Me(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    role: str
    name: str | None


class SignedIn(msgspec.Struct, rename="camel"):
    user: Me
    csrf_token: str


def me(user: SessionUser) -> Me:
    return Me(user.id, user.email, user.role.value, user.name)


def session_of(user: SessionUser) -> dict[str, Any]:
    return {"userId": str(user.id), "role": user.role.value}


async def retrieve_user(session: dict[str, Any], connection: ASGIConnection) -> SessionUser | None:
    """The active user of a session; a deleted or deactivated account signs out at once, and
    a changed role moves the session to a new id (the privilege it grants changed)."""
    try:
        user_id = uuid.UUID(str(session.get("userId")))
    except ValueError:
        return None
    db: Database = connection.app.state.db
    async with db.transaction() as conn:
        user = await user_by_id(conn, user_id)
    if user is not None and session.get("role") != user.role.value:
        rotate_session(connection, session_of(user))
    return user


def _signed_in(connection: ASGIConnection) -> SessionUser | None:
    """The session's user; None where no session check ran (Litestar's own OPTIONS answer,
    which the session check skips: reading `connection.user` there raises)."""
    user = connection.scope.get("user")
    return user if isinstance(user, SessionUser) else None


def _role_guard(allowed: Callable[[SessionUser], bool], refusal: str) -> Guard:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            return  # the Allow answer: no data, no session needed
        user = _signed_in(connection)
        if user is None or not allowed(user):
            raise PermissionDeniedException(refusal)

    return guard


# One guard per audience (roles in one place): admins; admin and sales staff; a customer's own.
admin_only = _role_guard(lambda u: u.is_admin, "admin role required")
staff_only = _role_guard(lambda u: u.is_staff, "admin or sales role required")
customer_only = _role_guard(lambda u: u.role == UserRole.CUSTOMER, "a customer account is required")


def session_auth(secure: bool) -> SessionAuth[SessionUser, Any]:
    return SessionAuth[SessionUser, Any](
        retrieve_user_handler=retrieve_user,
        session_backend_config=IssuedSessionConfig(
            key=SESSION_KEY,
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="lax",
            secure=secure,
            store=SESSION_STORE,
        ),
    )


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=settings.secret_key.get(),
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_samesite="strict",
        cookie_secure=settings.secure_cookies,
    )


def security_middleware(settings: Settings) -> list[DefineMiddleware]:
    """Session and user first (401 without one), then the CSRF check (403 without a token)."""
    return [
        session_auth(settings.secure_cookies).middleware,
        DefineMiddleware(SessionBoundCSRFMiddleware, config=csrf_config(settings)),
    ]


def csrf_cookie(request: Request[Any, Any, Any]) -> tuple[str, Cookie]:
    """The CSRF token of this request's session, and the cookie that hands it to scripts.

    A request without a session (the sign-in form) gets an anonymous one under a new id, so
    the token it is handed is bound to something the browser will send back."""
    if not isinstance(request.scope.get("session"), dict) or not request.session:
        rotate_session(request, {"anonymous": True})
    settings: Settings = request.app.state.settings
    token = csrf_token_for(current_session_id(request), settings.secret_key.get())
    cookie = Cookie(
        key=CSRF_COOKIE,
        value=token,
        path="/",
        samesite="strict",
        httponly=False,
        secure=settings.secure_cookies,
    )
    return token, cookie


def json_or_form_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Guard of the sign-in handlers: a cross-site page can post `text/plain` (or a form) to
    any origin without a preflight; only the body type the handler reads is accepted."""
    accepted = handler.opt.get("accepts", "application/json")
    if connection.headers.get("content-type", "").split(";")[0].strip().lower() != accepted:
        raise ClientException(
            f"sign-in accepts {accepted} only", status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE
        )


async def sign_in(
    request: Request[Any, Any, Any], state: State, email: str, password: str
) -> SessionUser:
    """Check the password and open a session under a new id; 401 for a wrong email or
    password, 429 while the account is locked after repeated failures (from any address)."""
    db: Database = state.db
    failures = request.app.stores.get(LOGIN_RATE_LIMIT_STORE)
    locked = await locked_for(failures, email)
    if locked is not None:
        raise TooManyRequestsException(
            "too many failed sign-ins for this account; try again later",
            headers={"Retry-After": str(locked)},
        )
    async with db.transaction() as conn:
        user = await authenticate(conn, email, password)
    if user is None:
        await record_failure(failures, email)
        raise NotAuthorizedException("wrong email or password")
    await clear_failures(failures, email)
    rotate_session(request, session_of(user))
    return user


@post(
    "/api/auth/login",
    opt=PUBLIC,
    guards=[json_or_form_only],
    middleware=[LOGIN_RATE_LIMIT.middleware],
    tags=["auth"],
    summary="Sign in (opens a session cookie; answers a CSRF token)",
    status_code=200,
)
async def login(
    request: Request[Any, Any, Any], state: State, data: JSONBody[Login]
) -> Response[SignedIn]:
    user = await sign_in(request, state, data.email, data.password)
    token, cookie = csrf_cookie(request)
    return Response(SignedIn(me(user), token), cookies=[cookie])


@post("/api/auth/logout", tags=["auth"], summary="Sign out", status_code=204)
async def logout(request: Request[SessionUser, Any, Any]) -> None:
    request.clear_session()


@get("/api/auth/me", tags=["auth"], summary="Who is signed in")
async def whoami(request: Request[SessionUser, Any, Any]) -> Me:
    return me(request.user)
