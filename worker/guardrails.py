"""The guardrails at run time: the one object the dispatcher consults for each destination.

- `admit` before a claim: disabled (crm_target_state), paused by a Retry-After, breaker open
  (nothing is claimed: the rows keep their retry budget) or half-open (one probe, under a
  lock shared by every process);
- `take` before a claim: tokens of the destination's rate limit, so no row is claimed that the
  limit would hold back (a held-back row is not an attempt);
- `slots`: the destination's `max_in_flight`, per worker process;
- `may_send` before each request and `observe` after each answer: this process's view of the
  breaker and pause, so the rest of a batch is given back unsent once the destination opens;
- `record` after a batch, in the transaction that records it: the answers folded into the
  shared state (Redis) and the `crm_target_state` row; 410 Gone or a failing streak longer
  than CRM_AUTO_DISABLE_AFTER_HOURS disables the destination, with an alert.

Shared state lives in Redis (infra/ratelimit.py); while Redis is unreachable each process
keeps its own (breaker, pause, bucket at the full rate), so deliveries go on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.destinations.guardrails import (
    Answer,
    Breaker,
    BreakerState,
    auto_disable_reason,
    capacity,
    take_tokens,
)
from domain.destinations.state import (
    TargetState,
    decode_breaker,
    disable,
    encode_breaker,
    note_failure,
    note_success,
    states,
)
from domain.models import ALERTS, utcnow
from domain.outbox.alerts import TARGET_DISABLED, AlertEvent
from domain.outbox.delivery import AttemptResult, describe
from infra.metrics import RATE_LIMITED, RETRY_AFTER, TARGET_BREAKER_OPEN, TARGET_ENABLED
from infra.ratelimit import RedisError, SharedState, namespace_for
from infra.settings import Settings, Target

log = logging.getLogger("crm.guardrails")
T = TypeVar("T")
STATES_TTL = 1.0  # seconds a process trusts its copy of crm_target_state
SUCCESS_NOTE_EVERY = 30.0  # a healthy destination's last_success_at is refreshed this often


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    limit: int | None = None  # rows one claim may take (1 for a probe)
    probe: bool = False


_HEALTHY = Breaker()
# How stale another process's pause may be when a request is about to go out.
SHARED_VIEW_TTL = 0.25


class Guardrails:
    """Per worker process (one event loop): every destination's guardrails."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.shared = (
            SharedState(settings.guard_redis_url, namespace_for(settings.database_url))
            if settings.guard_redis_url
            else None
        )
        self._view: dict[str, Breaker] = {}  # this process's latest view (and Redis fallback)
        self._buckets: dict[str, tuple[float, float]] = {}  # fallback buckets: tokens, last
        self._probes: set[str] = set()  # fallback probe locks
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._states: dict[str, TargetState] = {}
        self._states_at = -math.inf
        self._success_noted: dict[str, float] = {}
        self._shared_seen: dict[str, tuple[float, Breaker]] = {}  # (monotonic read at, state)
        self._shared_reading: dict[str, asyncio.Future[tuple[float, Breaker] | None]] = {}

    # ------------------------------------------------------------------ before a claim

    async def admit(self, target: Target) -> Admission:
        name, now = target.name, time.time()
        state = await self.state(name)
        enabled = target.enabled and not state.disabled
        TARGET_ENABLED.labels(name).set(1 if enabled else 0)
        if not enabled:
            return Admission(False)
        b = await self._shared_or_local(self._read_shared(name), lambda: self._local(name))
        self._view[name] = b
        self._shared_seen[name] = (time.monotonic(), b)  # the batch's first may_send reuses it
        breaker = b.state(now)
        TARGET_BREAKER_OPEN.labels(name).set(0 if breaker is BreakerState.CLOSED else 1)
        if b.waits_until(now) is not None:
            return Admission(False)
        if breaker is BreakerState.HALF_OPEN:
            if not await self._lock_probe(name):
                return Admission(False)  # another lane or process is probing
            return Admission(True, limit=1, probe=True)
        return Admission(True)

    async def take(self, target: Target, want: int) -> tuple[int, float]:
        """Rate-limit tokens for up to `want` rows: (granted, seconds until one when none)."""
        rate = target.rate_limit_per_second
        if not rate:
            return want, 0.0
        cap = capacity(rate)

        def local() -> tuple[int, float]:
            now = time.monotonic()
            tokens, last = self._buckets.get(target.name, (cap, now))
            granted, left, wait = take_tokens(tokens, last, now, rate, want)
            self._buckets[target.name] = (left, now)
            return granted, wait

        shared = self.shared.take(target.name, rate, cap, want) if self.shared else None
        return await self._shared_or_local(shared, local)

    async def refund(self, target: Target, n: int) -> None:
        """Tokens taken for rows that were not due go back (another lane may use them)."""
        rate = target.rate_limit_per_second
        if not rate or n <= 0:
            return
        cap = capacity(rate)

        def local() -> None:
            tokens, last = self._buckets.get(target.name, (cap, time.monotonic()))
            self._buckets[target.name] = (min(cap, tokens + n), last)

        await self._shared_or_local(
            self.shared.refund(target.name, cap, n) if self.shared else None, local
        )

    @staticmethod
    def note_rate_limited(target: Target) -> None:
        RATE_LIMITED.labels(target.name).inc()

    def slots(self, target: Target) -> asyncio.Semaphore | None:
        """The destination's in-flight cap in this process, when it is below the process's own
        (`CRM_MAX_IN_FLIGHT` slots bound every request anyway)."""
        if target.max_in_flight is None or target.max_in_flight >= self.settings.max_in_flight:
            return None
        sem = self._slots.get(target.name)
        if sem is None:
            sem = self._slots[target.name] = asyncio.Semaphore(target.max_in_flight)
        return sem

    # ------------------------------------------------------------------ during a batch

    async def may_send(self, target: Target) -> bool:
        """False once the destination must wait: learned from an answer of this process, or
        from the shared state another process recorded (read at most every SHARED_VIEW_TTL),
        so a pause started elsewhere also holds back the rows this process claimed before it.

        Concurrent callers share one read (a future), and wake in the order they asked, so
        the lanes' requests still leave in claim (priority) order."""
        now = time.time()
        b = self._view.get(target.name)
        if b is not None and b.waits_until(now) is not None:
            return False
        if self.shared is None or not self.shared.available:
            return True
        name = target.name
        seen = self._shared_seen.get(name)
        if seen is None or time.monotonic() - seen[0] >= SHARED_VIEW_TTL:
            reading = self._shared_reading.get(name)
            if reading is None:
                reading = self._shared_reading[name] = asyncio.ensure_future(
                    self._read_shared_view(name)
                )
            seen = await asyncio.shield(reading)
            if seen is None:
                return True  # Redis unreadable: this process's own view decides
        return seen[1].waits_until(now) is None

    async def _read_shared_view(self, name: str) -> tuple[float, Breaker] | None:
        try:
            seen = (time.monotonic(), await self._read_shared(name))
        except RedisError:
            assert self.shared is not None
            self.shared.mark_down()
            return None
        finally:
            self._shared_reading.pop(name, None)
        self._shared_seen[name] = seen
        return seen

    def observe(self, target: Target, result: AttemptResult) -> None:
        """Fold one answer into this process's view at once (the batch's other rows see it)."""
        pause = result.pause_seconds
        if pause is not None:
            RETRY_AFTER.observe(pause)
        answer = result.answer
        b = self._view.get(target.name, Breaker())
        if pause is None and answer is Answer.SUCCESS and b == _HEALTHY:
            return  # nothing changes: the common case, without a new object per answer
        self._view[target.name] = b.after(
            answer, time.time(), pause, base=self.settings.breaker_pause
        )

    # ------------------------------------------------------------------ after a batch

    async def record(
        self, conn: AsyncConnection, target: Target, results: Sequence[AttemptResult]
    ) -> list[AlertEvent]:
        """Share the batch's answers with every process; keep the destination's health row.

        Runs in the transaction that records the attempts. Returns the alerts to send once it
        has committed (a destination disabled just now).
        """
        if not results:
            return []
        name = target.name
        answers = [(r.answer, r.pause_seconds) for r in results]
        if (
            any(a is not Answer.SUCCESS for a, _ in answers)
            or self._view.get(name, Breaker()) != Breaker()
        ):
            await self._fold(name, answers)
        now_mono = time.monotonic()
        state = await self.state(name)
        if any(a is Answer.SUCCESS for a, _ in answers):
            due = now_mono - self._success_noted.get(name, -math.inf) >= SUCCESS_NOTE_EVERY
            if state.failing_since is not None or due:
                await note_success(conn, name)
                self._success_noted[name] = now_mono
                self._states[name] = TargetState(name, state.disabled_reason, state.disabled_at)
            return []
        failing_since = await note_failure(conn, name, describe(results[-1]))
        gone = next((r for r in results if r.gone), None)
        last = gone or results[-1]
        reason = auto_disable_reason(
            last.answer,
            last.http_status if last.outcome is None else describe(last),
            failing_since,
            utcnow(),
            self.settings.auto_disable_after,
        )
        self._states[name] = TargetState(
            name, state.disabled_reason, state.disabled_at, failing_since
        )
        if reason is None or not await disable(conn, name, reason):
            return []
        self._states[name] = TargetState(name, reason, utcnow(), failing_since)
        details = {"reason": reason, "lastError": describe(last)}
        await conn.execute(
            insert(ALERTS).values(
                kind=TARGET_DISABLED,
                target_system=name,
                opened_at=utcnow(),
                closed_at=None,
                details=details,
            )
        )
        TARGET_ENABLED.labels(name).set(0)
        return [AlertEvent(TARGET_DISABLED, name, "raised", details)]

    async def end_probe(self, target: Target) -> None:
        self._probes.discard(target.name)
        if self.shared is not None and self.shared.available:
            try:
                await self.shared.unlock(target.name)
            except RedisError:
                self.shared.mark_down()

    # ------------------------------------------------------------------ state

    async def state(self, name: str) -> TargetState:
        """This target's crm_target_state row, re-read at most every STATES_TTL seconds."""
        if time.monotonic() - self._states_at >= STATES_TTL:
            async with self.engine.connect() as conn:
                self._states = await states(conn)
            self._states_at = time.monotonic()
        return self._states.get(name) or TargetState(name)

    def _local(self, name: str) -> Breaker:
        return self._view.get(name, Breaker())

    async def _read_shared(self, name: str) -> Breaker:
        assert self.shared is not None
        return decode_breaker(await self.shared.read(name))

    async def _fold(self, name: str, answers: list[tuple[Answer, float | None]]) -> None:
        base = self.settings.breaker_pause

        def apply(b: Breaker) -> Breaker:
            now = time.time()
            for answer, pause in answers:
                b = b.after(answer, now, pause, base=base)
            return b

        def local() -> Breaker:
            b = apply(self._local(name))
            self._view[name] = b
            return b

        if self.shared is None or not self.shared.available:
            local()
            return
        try:
            new = await self.shared.update(
                name, lambda raw: encode_breaker(apply(decode_breaker(raw)))
            )
            self._view[name] = decode_breaker(new)
        except RedisError:
            self.shared.mark_down()
            local()

    async def _lock_probe(self, name: str) -> bool:
        ttl = 2 * self.settings.delivery_timeout + 5

        def local() -> bool:
            if name in self._probes:
                return False
            self._probes.add(name)
            return True

        if self.shared is None:
            return local()
        return await self._shared_or_local(self.shared.try_lock(name, ttl), local)

    async def _shared_or_local(self, shared: Awaitable[T] | None, local: Callable[[], T]) -> T:
        """Redis when it answers; this process's own state while it does not."""
        if shared is None:
            return local()
        if self.shared is None or not self.shared.available:
            if asyncio.iscoroutine(shared):
                shared.close()
            return local()
        try:
            return await shared
        except (RedisError, OSError) as exc:
            log.warning("guardrails: Redis unreachable (%s); this process's own state for now", exc)
            self.shared.mark_down()
            return local()

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
