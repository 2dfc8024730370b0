"""Per-destination state shared by every worker process, in Redis: token buckets, the breaker and
pause hash, and the one-probe-at-a-time lock.

Platform only: the rules (bucket arithmetic, breaker transitions) are the domain's
(domain/destinations/guardrails.py); the Lua script below runs the bucket's arithmetic
atomically, so two processes never spend the same token. Every call raises `redis.RedisError`
when Redis is unreachable; the caller (worker/guardrails.py) then falls back to a bucket and
state of its own process for `DOWN_SECONDS`, instead of stopping deliveries.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

DOWN_SECONDS = 5.0
STATE_TTL_SECONDS = 3 * 24 * 3600  # longer than the breaker's longest pause (24 h)

# KEYS[1] bucket; ARGV: rate (tokens/s), capacity, want, now (s). Returns {granted, wait (ms)}.
# The same arithmetic as domain.destinations.guardrails.take_tokens.
_TAKE = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1]) or cap
local last = tonumber(state[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - last) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
local wait = 0
if granted == 0 then wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * (cap / rate + 60)))
return {granted, tostring(wait)}
"""
# KEYS[1] bucket; ARGV: capacity, n. Tokens claimed for rows that were not there go back.
_REFUND = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + tonumber(ARGV[2]))))
end
return 0
"""


def namespace_for(database_url: str) -> str:
    """Keys of one deployment (its database), so deployments sharing a Redis never mix."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:12]


class SharedState:
    """Redis-backed state of each destination, under `crm:guard:<namespace>:<name>:...`."""

    def __init__(self, url: str, namespace: str) -> None:
        self.prefix = f"crm:guard:{namespace}:"
        self._redis = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._take = self._redis.register_script(_TAKE)
        self._refund = self._redis.register_script(_REFUND)
        self._down_until = 0.0

    def key(self, name: str, part: str) -> str:
        return f"{self.prefix}{name}:{part}"

    @property
    def available(self) -> bool:
        """False for a few seconds after an error: no half-second timeout on every claim."""
        return time.monotonic() >= self._down_until

    def mark_down(self) -> None:
        self._down_until = time.monotonic() + DOWN_SECONDS

    async def take(self, name: str, rate: float, capacity: float, want: int) -> tuple[int, float]:
        """(tokens granted, seconds until the next one when none was)."""
        granted, wait = await self._take(
            keys=[self.key(name, "bucket")], args=[rate, capacity, want, time.time()]
        )
        return int(granted), float(wait)

    async def refund(self, name: str, capacity: float, n: int) -> None:
        await self._refund(keys=[self.key(name, "bucket")], args=[capacity, n])

    async def read(self, name: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self.key(name, "breaker"))  # type: ignore[misc]
        return _text(raw)

    async def update(
        self, name: str, fold: Callable[[dict[str, str]], dict[str, str]]
    ) -> dict[str, str]:
        """Apply `fold` to the hash atomically (optimistic WATCH/MULTI, retried on a race)."""
        key = self.key(name, "breaker")
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hgetall(key)  # type: ignore[misc]
                    new = fold(_text(raw))
                    pipe.multi()
                    pipe.delete(key)
                    if new:
                        pipe.hset(key, mapping=new)  # type: ignore[arg-type]
                        pipe.expire(key, STATE_TTL_SECONDS)
                    await pipe.execute()
                    return new
                except WatchError:
                    continue

    async def try_lock(self, name: str, ttl: float) -> bool:
        return bool(
            await self._redis.set(self.key(name, "probe"), "1", nx=True, px=int(ttl * 1000))
        )

    async def unlock(self, name: str) -> None:
        await self._redis.delete(self.key(name, "probe"))

    async def clear(self, name: str) -> None:
        await self._redis.delete(*(self.key(name, p) for p in ("bucket", "breaker", "probe")))

    async def close(self) -> None:
        await self._redis.aclose()


def _text(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    def s(v: bytes | str) -> str:
        return v.decode() if isinstance(v, bytes) else v

    return {s(k): s(v) for k, v in raw.items()}


__all__ = ["DOWN_SECONDS", "RedisError", "SharedState", "namespace_for"]
