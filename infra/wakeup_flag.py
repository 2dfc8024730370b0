"""The dispatcher's wake-up protocol on Redis: one Celery wake-up at a time, then a hot dispatch.

Two keys per Celery queue, in the broker's Redis (next to the queue they describe, so the API
and every worker agree on where they are):

- the flag `crm-wakeup-pending:<queue>`: `pending` while a published wake-up waits in the
  broker, or the token of the dispatch that is watching the wake list;
- the wake list `crm-wakeup:<queue>`: at most one element, "a commit happened".

After a commit the API runs `WakeupFlag.wake`, one round trip (a Lua script): `SET flag pending
NX EX 30`; if the flag was already set, `LPUSH` + `LTRIM` the wake list instead. It publishes a
`crm.dispatch` task only when it set the flag. So while no worker runs, one wake-up waits in
the broker however many commits come (it expires with the flag), and none piles up.

A dispatch task `take`s the flag (overwrites `pending` with its token, empties the list) before
its first claim, unless another dispatch already watches; it drains, then lingers: it waits on
the list (`BLPOP`), drains again on each push, and keeps its token alive (`keep`) until nothing
came for `CRM_DISPATCH_LINGER_SECONDS`, its time budget is spent or the worker is stopping. A
commit made while it watches costs a Redis push, not a Celery task. On its way out it `leave`s
(deletes the flag if it still holds its token), then claims once more:

- a commit before the delete pushed to the list, after its rows were committed: the last claim,
  made after the delete, sees them;
- a commit after the delete finds no flag: it sets it and publishes a new dispatch.

So no commit is missed, whatever the interleaving (Redis runs each script atomically). Tokens
make `keep` and `leave` affect only their own watch: a dispatch whose flag expired or was taken
over stops watching, and never deletes a flag that now stands for a pending wake-up or another
watch. The flag expires by itself (`pending` after 30 s, a watch after its budget plus a
margin), so a lost message or a killed worker never blocks wake-ups for long; meanwhile the beat
sweep delivers (and its dispatch takes a `pending` flag over). A worker that is stopping leaves
without the last claim: a commit pushed just before waits for the sweep.

With another broker (the embedded SQLite one, RabbitMQ) there is no flag: the API coalesces in
time and each dispatch returns once nothing is due.
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio as aioredis
from redis import Redis

from infra.settings import Settings

log = logging.getLogger("crm.wakeup")
PENDING_SECONDS = 30
PENDING = "pending"

# API: set the flag and publish, or push to the wake list (one element at most) for a watcher.
_WAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"""
# Dispatch: watch, unless another dispatch does; pushes made before are claimed by its first run.
_TAKE = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[3] and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
_KEEP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def flag_redis_url(settings: Settings) -> str | None:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return None


def _keys(queue: str) -> list[str]:
    return [f"crm-wakeup-pending:{queue}", f"crm-wakeup:{queue}"]


class WakeupFlag:
    """The API's side (synchronous, from its wake-up thread)."""

    def __init__(self, url: str, queue: str) -> None:
        self.key, self.list_key = self._keys = _keys(queue)
        # Short timeouts: the API may not hang on a dead Redis.
        self._redis = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._wake = self._redis.register_script(_WAKE)
        self._drop = self._redis.register_script(_DROP)

    @classmethod
    def from_settings(cls, settings: Settings) -> WakeupFlag | None:
        url = flag_redis_url(settings)
        return cls(url, settings.celery_queue) if url else None

    def wake(self) -> bool:
        """True when the caller must publish a wake-up (it set the flag); otherwise a pending
        or watching dispatch has been told. Raises if Redis is down."""
        return bool(self._wake(keys=self._keys, args=[PENDING, PENDING_SECONDS]))

    def clear(self) -> None:
        """The wake-up could not be published: the next commit tries again. Best effort: with
        Redis down the flag expires by itself."""
        try:
            self._drop(keys=self._keys, args=[PENDING])
        except Exception as exc:
            log.warning("wake-up flag not cleared (%s); it expires by itself", type(exc).__name__)

    def close(self) -> None:
        self._redis.close()


class WakeupWatch:
    """A dispatch's side (asyncio, on the dispatcher's loop): take, keep, wait, leave."""

    # A wait is cut into steps this long, so a stopping worker is noticed between them.
    STEP = 0.25

    def __init__(self, url: str, queue: str, hold_seconds: int) -> None:
        self.key, self.list_key = self._keys = _keys(queue)
        self.hold_seconds = hold_seconds
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        self._take = self._redis.register_script(_TAKE)
        self._keep = self._redis.register_script(_KEEP)
        self._drop = self._redis.register_script(_DROP)
        self.token = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> WakeupWatch | None:
        url = flag_redis_url(settings)
        if url is None:
            return None
        # Held across one drain (at most the budget) and one wait step, with room to spare.
        hold = int(settings.dispatch_budget + settings.dispatch_linger) + 5
        return cls(url, settings.celery_queue, hold)

    async def take(self) -> bool:
        """Watch the wake list from now on, unless another dispatch does (False)."""
        self.token = uuid.uuid4().hex
        args: list[str | int] = [self.token, self.hold_seconds, PENDING]
        return bool(await self._take(keys=self._keys, args=args))

    async def keep(self) -> bool:
        """Still the watcher (the hold renewed)? False when the flag expired or was taken over."""
        return bool(await self._keep(keys=self._keys, args=[self.token, self.hold_seconds]))

    async def wait(self, seconds: float) -> bool:
        """True when a commit pushed a wake-up within `seconds` (at most one STEP)."""
        timeout = max(0.01, min(seconds, self.STEP))  # never 0: BLPOP would block for good
        return await self._redis.blpop([self.list_key], timeout=timeout) is not None

    async def leave(self) -> None:
        """Stop watching: commits from now on publish a dispatch again."""
        await self._drop(keys=self._keys, args=[self.token])

    async def clear(self) -> None:
        """Without lingering: the flag goes as the dispatch starts (commits publish again)."""
        await self._redis.delete(self.key)

    async def close(self) -> None:
        await self._redis.aclose()
