"""Sign-in for staff: server-side sessions, roles as guards, CSRF for cookie-authenticated
changes, and a rate limit on password attempts. All Litestar's own machinery."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.params import JSONBody
from litestar.security.session_auth import SessionAuth

from domain.accounts.users import SessionUser, authenticate, user_by_id
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


async def retrieve_user(session: dict[str, Any], connection: ASGIConnection) -> SessionUser | None:
    """The active user of a session; a deleted or deactivated account signs out at once."""
    try:
        user_id = uuid.UUID(str(session.get("userId")))
    except ValueError:
        return None
    db: Database = connection.app.state.db
    async with db.transaction() as conn:
        return await user_by_id(conn, user_id)


def admin_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: signed-in customers get a 403 on admin endpoints and pages."""
    if connection.scope.get("method") == "OPTIONS":
        return  # Litestar's own OPTIONS answer (Allow), which the session check skips
    user = connection.scope.get("user")  # unset (not an error) where no session check ran
    if not isinstance(user, SessionUser) or not user.is_admin:
        raise PermissionDeniedException("admin role required")


def session_auth(secure: bool) -> SessionAuth[SessionUser, Any]:
    return SessionAuth[SessionUser, Any](
        retrieve_user_handler=retrieve_user,
        session_backend_config=ServerSideSessionConfig(
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
        DefineMiddleware(CSRFMiddleware, config=csrf_config(settings)),
    ]


def csrf_cookie(settings: Settings) -> tuple[str, Cookie]:
    token = generate_csrf_token(settings.secret_key.get())
    cookie = Cookie(
        key=CSRF_COOKIE,
        value=token,
        path="/",
        samesite="strict",
        httponly=False,
        secure=settings.secure_cookies,
    )
    return token, cookie


async def sign_in(
    request: Request[Any, Any, Any], state: State, email: str, password: str
) -> SessionUser:
    """Check the password and open a fresh session; 401 for a wrong email or password."""
    db: Database = state.db
    async with db.transaction() as conn:
        user = await authenticate(conn, email, password)
    if user is None:
        raise NotAuthorizedException("wrong email or password")
    request.clear_session()
    request.set_session({"userId": str(user.id), "role": user.role.value})
    return user


@post(
    "/api/auth/login",
    opt=PUBLIC,
    middleware=[LOGIN_RATE_LIMIT.middleware],
    tags=["auth"],
    summary="Sign in (opens a session cookie; answers a CSRF token)",
    status_code=200,
)
async def login(
    request: Request[Any, Any, Any], state: State, data: JSONBody[Login]
) -> Response[SignedIn]:
    user = await sign_in(request, state, data.email, data.password)
    token, cookie = csrf_cookie(state.settings)
    return Response(SignedIn(me(user), token), cookies=[cookie])


@post("/api/auth/logout", tags=["auth"], summary="Sign out", status_code=204)
async def logout(request: Request[SessionUser, Any, Any]) -> None:
    request.clear_session()


@get("/api/auth/me", tags=["auth"], summary="Who is signed in")
async def whoami(request: Request[SessionUser, Any, Any]) -> Me:
    return me(request.user)
