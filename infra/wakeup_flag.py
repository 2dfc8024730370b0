"""The "wake-up pending" flag: at most one dispatcher wake-up waits in the broker.

The API sets it (`SET NX EX`) before publishing a wake-up and publishes only when it was not
set; the dispatch task clears it when it starts, before it claims. A commit made before the
clear is claimed by that dispatch; one made after it finds the flag clear and publishes a new
wake-up. So wake-ups never pile up while no worker runs (one message waits, however many commits
come), and none is lost. The flag expires with the message (`expires=`), so a lost message or a
dead worker never blocks wake-ups longer than `PENDING_SECONDS`.

It lives in the broker's Redis, next to the queue it describes, so the API and every worker
always agree on where it is. With another broker (the embedded SQLite one, RabbitMQ) there is no
flag and the API falls back to coalescing in time.
"""

from __future__ import annotations

import logging

from redis import Redis

from infra.settings import Settings

log = logging.getLogger("crm.wakeup")
PENDING_SECONDS = 30


def flag_redis_url(settings: Settings) -> str | None:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return None


class WakeupFlag:
    """One key per Celery queue, `crm-wakeup-pending:<queue>`."""

    def __init__(self, url: str, queue: str) -> None:
        self.key = f"crm-wakeup-pending:{queue}"
        # Short timeouts: neither side may hang on a dead Redis.
        self._redis = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)

    @classmethod
    def from_settings(cls, settings: Settings) -> WakeupFlag | None:
        url = flag_redis_url(settings)
        return cls(url, settings.celery_queue) if url else None

    def claim(self) -> bool:
        """True when no wake-up was pending: the caller publishes one. Raises if Redis is down."""
        return bool(self._redis.set(self.key, b"1", nx=True, ex=PENDING_SECONDS))

    def clear(self) -> None:
        """A dispatch has started: the next commit must publish a new wake-up. Best effort: with
        Redis down the flag expires by itself."""
        try:
            self._redis.delete(self.key)
        except Exception as exc:
            log.warning("wake-up flag not cleared (%s); it expires by itself", type(exc).__name__)

    def close(self) -> None:
        self._redis.close()
