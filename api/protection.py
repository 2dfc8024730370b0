"""Abuse resistance of the public endpoints: per-client rate limits, CORS, security headers."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar.config.cors import CORSConfig
from litestar.exceptions import TooManyRequestsException
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis

from infra.settings import Settings

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
RATE_LIMIT_NAMESPACE = "crm-rate-limit"


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


WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    remaining: int
    reset: int  # seconds until the window ends


# One round trip for a whole batch: each key gets its batch's hits and, once, its expiry.
_COUNT_BATCH = """
local ttl = tonumber(ARGV[#ARGV])
local totals = {}
for i, key in ipairs(KEYS) do
    totals[i] = redis.call('INCRBY', key, ARGV[i])
    if totals[i] == tonumber(ARGV[i]) then redis.call('EXPIRE', key, ttl) end
end
return totals
"""


class FixedWindowLimiter:
    """N requests per client per window, counted exactly in Redis and shared by every API
    process; this process's memory while Redis is down (submissions never fail on it).

    The hits of a process are batched (group commit for counters): while one round trip is in
    flight, the hits that arrive wait, then go in the next one as a single INCRBY per client
    (one Lua script for every client of the batch). The n hits of a batch take the ranks
    total-n+1 .. total in arrival order, so each request gets the same answer as one INCR of
    its own would have given: the count is exact, not a local estimate. A client this process
    has seen over its limit is refused without a round trip until the window ends (a count
    only grows within a window). One INCR + EXPIRE per request cost a third of the API's
    throughput with the limiter on (bench/forms_submit.py --rate-limit).

    Chosen over Litestar's RateLimitMiddleware, which keeps each client's history as a list it
    reads and writes back (two round trips) under one lock per process.
    """

    def __init__(self, limit: tuple[str, int], redis_url: str | None, namespace: str) -> None:
        unit, self.limit = limit
        self.window = WINDOW_SECONDS[unit]
        self.namespace = namespace
        # Short timeouts: a dead Redis costs one batch half a second, then memory takes over.
        self._redis = (
            Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            if redis_url
            else None
        )
        self._script = self._redis.register_script(_COUNT_BATCH) if self._redis else None
        self._down_until = 0.0
        self._memory: dict[str, int] = {}
        self._memory_window = -1
        self._over: set[str] = set()  # keys of this window seen over the limit
        self._over_window = -1
        self._waiting: dict[str, list[asyncio.Future[int]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def hit(self, client: str) -> Verdict:
        now = time.time()
        window = int(now // self.window)
        reset = max(1, math.ceil((window + 1) * self.window - now))
        key = f"{self.namespace}:{client}:{window}"
        if window != self._over_window:
            self._over, self._over_window = set(), window
        if key in self._over:
            return Verdict(False, 0, reset)
        count = await self._count(key)
        if count > self.limit:
            self._over.add(key)
        return Verdict(count <= self.limit, max(0, self.limit - count), reset)

    def _count(self, key: str) -> asyncio.Future[int]:
        """This hit's rank in its client's window, once the batch it joins is counted."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                totals = await self._totals({k: len(v) for k, v in batch.items()})
                for futures, total in zip(batch.values(), totals, strict=True):
                    for rank, future in enumerate(futures, start=total - len(futures) + 1):
                        if not future.done():  # its request may have been cancelled
                            future.set_result(rank)
        finally:
            self._flusher = None

    async def _totals(self, hits: dict[str, int]) -> list[int]:
        if self._script is not None and time.monotonic() >= self._down_until:
            try:
                totals = await self._script(keys=list(hits), args=[*hits.values(), self.window + 1])
                return [int(t) for t in totals]
            except Exception as exc:
                log.warning("rate-limit store unavailable (%s); using memory", type(exc).__name__)
                self._down_until = time.monotonic() + 5.0
        window = int(time.time() // self.window)
        if window != self._memory_window:
            self._memory, self._memory_window = {}, window
        for key, n in hits.items():
            self._memory[key] = self._memory.get(key, 0) + n
        return [self._memory[key] for key in hits]

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()


def rate_limit(settings: Settings) -> FixedWindowLimiter | None:
    """Per client (IP) limit on the public POSTs; 429 with Retry-After when exceeded."""
    if settings.rate_limit is None:
        return None
    return FixedWindowLimiter(
        settings.rate_limit, settings.rate_limit_redis_url, RATE_LIMIT_NAMESPACE
    )


def rate_limited(app: ASGIApp, limiter: FixedWindowLimiter) -> ASGIApp:
    """Counts the public POSTs per client address (uvicorn resolves trusted proxy headers);
    over the limit: 429 with Retry-After. Answers carry RateLimit-Limit/Remaining/Reset."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in PUBLIC_POSTS
            or scope["method"] != "POST"  # type: ignore[typeddict-item]
        ):
            await app(scope, receive, send)
            return
        client = scope.get("client")
        verdict = await limiter.hit(client[0] if client else "unknown")
        headers = {
            "RateLimit-Limit": str(limiter.limit),
            "RateLimit-Remaining": str(verdict.remaining),
            "RateLimit-Reset": str(verdict.reset),
        }
        if not verdict.allowed:
            raise TooManyRequestsException(headers={**headers, "Retry-After": str(verdict.reset)})
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *raw]}  # type: ignore[typeddict-item]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


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
