"""Abuse resistance of the public endpoints: per-client rate limits, CORS, security headers."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

from domain.config import Settings

log = logging.getLogger("crm.protection")

PUBLIC_POSTS = frozenset(
    {
        "/api/forms/submit",
        "/api/auth/register",
        "/api/newsletter-subscribe",
        "/api/newsletter-unsubscribe",
        "/api/v1/rfq/submit",
    }
)
RATE_LIMIT_STORE = "public_rate_limit"


class ResilientStore(Store):
    """Redis when it answers, this process's memory when it does not.

    Rate limiting must never turn a Redis outage into failed submissions: the outbox exists
    precisely so that the API keeps accepting while Redis is down.
    """

    def __init__(self, primary: Store, retry_after: float = 5.0) -> None:
        self.primary = primary
        self.fallback = MemoryStore()
        self._retry_after = retry_after
        self._down_until = 0.0

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() >= self._down_until:
            try:
                return await getattr(self.primary, name)(*args, **kwargs)
            except Exception as exc:
                log.warning("rate-limit store unavailable (%s); using memory", type(exc).__name__)
                self._down_until = time.monotonic() + self._retry_after
        return await getattr(self.fallback, name)(*args, **kwargs)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        await self._call("set", key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        result: bytes | None = await self._call("get", key, renew_for)
        return result

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def delete_all(self) -> None:
        await self._call("delete_all")

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))

    async def expires_in(self, key: str) -> int | None:
        result: int | None = await self._call("expires_in", key)
        return result


def shared_store(settings: Settings, namespace: str) -> Store:
    """A store every API process of the deployment shares (Redis), memory while Redis is down.

    Rate-limit counters, staff sessions and sign-in attempts live here: with
    `crm api --workers N` a session opened by one process must be known to the others.
    """
    url = settings.rate_limit_redis_url
    if url is None:
        return MemoryStore()
    # Short timeouts: a dead Redis costs one request half a second, then memory takes over.
    client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return ResilientStore(RedisStore(client, namespace=namespace, handle_client_shutdown=True))


def rate_limit_store(settings: Settings) -> Store:
    return shared_store(settings, "crm-rate-limit")


def _is_public_post(request: Request) -> bool:
    return request.method == "POST" and request.url.path in PUBLIC_POSTS


def rate_limit(settings: Settings) -> RateLimitConfig | None:
    """Per client (IP) limit on the public POSTs; 429 with Retry-After when exceeded."""
    if settings.rate_limit is None:
        return None
    unit, count = settings.rate_limit
    return RateLimitConfig(
        rate_limit=(unit, count),  # type: ignore[arg-type]
        store=RATE_LIMIT_STORE,
        check_throttle_handler=_is_public_post,
    )


def cors(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["Idempotent-Replayed", "X-Request-ID", "Retry-After"],
        max_age=600,
    )


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}
# The dashboard uses no third-party resource; the API docs pages (/schema) load theirs from a CDN.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries, raw; a CSP on everything but the API docs."""
    return _WITH_CSP if not path.startswith("/schema") else _WITHOUT_CSP


_WITHOUT_CSP = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_WITH_CSP = [*_WITHOUT_CSP, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
