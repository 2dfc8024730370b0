"""Staff sessions: only ids the server issued, a new id at sign-in, CSRF tokens bound to the id.

Litestar's server-side backend takes the cookie's value as the session id whatever it is, and
keeps it when the session's content changes: a `crm_session` cookie planted in a victim's
browser became, once the victim signed in, a session the planter knew the id of (fixation).
Its CSRF middleware compares a header with a cookie, both signed with one app-wide secret: a
token handed to any anonymous visitor passed on anybody's session. Both are subclassed here,
so every route behind `security_middleware` gets the fix, not only the sign-in handlers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Message, Receive, Scope, ScopeSession, Send
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState

SESSION_ID_BYTES = 32
_ISSUED_SHAPE = re.compile(rf"[0-9a-f]{{{SESSION_ID_BYTES * 2}}}")


class IssuedSessionBackend(ServerSideSessionBackend):
    """A cookie is a session id only if the store holds that session; anything else gets a
    fresh random id. `rotate_session` moves a session to a new id and drops the old one."""

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key) or ""
        if _ISSUED_SHAPE.fullmatch(session_id):
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                # The one place an id from outside is adopted: the store knows it.
                ScopeState.from_scope(connection.scope).session_id = session_id
                return self.deserialize_data(data)
        return {}

    def get_session_id(self, connection: ASGIConnection) -> str:
        """The id adopted at load or set by a rotation; otherwise a new one, never the cookie."""
        return connection.get_session_id() or self.generate_session_id()

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection
    ) -> None:
        cookie_id = connection.cookies.get(self.config.key)
        if cookie_id and cookie_id != connection.get_session_id():
            # Signed out or rotated: the old id must not keep a copy of the session.
            store = self.config.get_store_from_app(connection.scope["app"])
            await self.delete(cookie_id, store=store)
        await super().store_in_message(scope_session, message, connection)


@dataclass
class IssuedSessionConfig(ServerSideSessionConfig):
    _backend_class = IssuedSessionBackend


def rotate_session(connection: ASGIConnection, data: dict[str, Any]) -> str:
    """Give the connection's session a fresh random id holding `data` (sign-in, role change);
    the response sets the new cookie and the old id is deleted from the store."""
    session_id = secrets.token_hex(SESSION_ID_BYTES)
    ScopeState.from_scope(connection.scope).session_id = session_id
    connection.set_session(data)
    return session_id


def current_session_id(connection: ASGIConnection) -> str:
    return value_or_default(ScopeState.from_scope(connection.scope).session_id, "") or ""


def csrf_token_for(session_id: str, secret: str) -> str:
    """The CSRF token of one session: an HMAC of its id, so it is worthless on any other."""
    return hmac.new(secret.encode(), b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


class SessionBoundCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check with the token derived from the session id instead of a random
    value in a cookie. Runs after the session middleware. Safe requests set the `csrftoken`
    cookie (for scripts) and the template token to the current session's token; unsafe ones
    must send that token in the header or the form's `_csrf_token` field."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or should_bypass_middleware(
            scope=scope,
            scopes=self.scopes,
            exclude_opt_key=self.config.exclude_from_csrf_key,
            exclude_path_pattern=self.exclude,
        ):
            await self.app(scope, receive, send)
            return
        request = scope["litestar_app"].request_class(scope=scope, receive=receive)
        session_id = current_session_id(request)
        expected = csrf_token_for(session_id, self.config.secret)
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            state.csrf_token = expected
            if request.cookies.get(self.config.cookie_name) != expected:
                send = self.create_send_wrapper(send=send, token=expected, csrf_cookie=None)
            await self.app(scope, receive, send)
            return
        submitted = request.headers.get(self.config.header_name)
        if not submitted and request.content_type[0] in {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }:
            submitted = (await request.form()).get("_csrf_token")
        if (
            session_id
            and isinstance(submitted, str)
            and hmac.compare_digest(submitted.encode("utf-8", "replace"), expected.encode())
        ):
            state.csrf_token = expected
            await self.app(scope, receive, send)
            return
        raise PermissionDeniedException("CSRF token verification failed")
