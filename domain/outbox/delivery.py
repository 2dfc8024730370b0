"""The outbox's delivery bookkeeping: claim due rows under a lease, record attempts, replay.

Statements are SQLAlchemy Core, run on async connections (worker and API alike).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, any_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.guardrails import (
    RETRY_AFTER_CAP,
    Answer,
    classify,
    is_permanent,
    pause_for,
)
from domain.enums import NotificationStatus
from domain.models import ATTEMPTS, NOTIFICATIONS, utcnow
from domain.outbox.queries import is_unread
from domain.outbox.rows import mark_outbox_written
from domain.rules import RetryPolicy

N = NOTIFICATIONS
RESPONSE_EXCERPT = 1024
ACK, FAIL = "ack", "fail"  # worker/connectors/base.py Outcome values
_ATTEMPT_COLUMNS = (
    "notification_id",
    "target_system",
    "attempt_number",
    "started_at",
    "duration_ms",
    "http_status",
    "error",
    "response_body",
)
# PostgreSQL: a whole batch of attempts in one cached statement of one array per column,
# instead of one INSERT per row (executemany) or a VALUES list compiled for each batch size.
_INSERT_ATTEMPTS_FROM_ARRAYS = insert(ATTEMPTS).from_select(
    _ATTEMPT_COLUMNS,
    select(
        *(
            func.unnest(bindparam(f"a_{c}", type_=ARRAY(ATTEMPTS.c[c].type)))
            for c in _ATTEMPT_COLUMNS
        )
    ),
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification leased to one dispatcher until `claimed_until`."""

    id: uuid.UUID
    type: str
    target_system: str
    priority: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int  # attempts made so far, all of them: the next one is number attempts + 1
    request_id: str | None
    counted_attempts: int = 0  # those that count against the retry policy's maximum

    def payload(self) -> dict[str, Any]:
        """The webhook body: the seed's "Notification Payload Example"."""
        return {
            "id": str(self.id),
            "type": self.type,
            "targetSystem": self.target_system,
            "priority": self.priority,
            "data": self.data,
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True, slots=True)
class AttemptResult:
    notification: Claimed
    started_at: datetime
    duration_ms: float
    http_status: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: float | None = None  # the receiver's Retry-After, in seconds, when it sent one
    # A connector's explicit verdict ("ack", "retry", "fail"; worker/connectors/base.py
    # Outcome); None for a webhook, whose verdict is derived from http_status.
    outcome: str | None = None
    pause: bool = False  # a connector's retry_after holds the whole destination
    disable: bool = False  # a connector's receiver is gone for good (as 410 is)

    @property
    def delivered(self) -> bool:
        if self.outcome is not None:
            return self.outcome == ACK
        return self.http_status is not None and 200 <= self.http_status < 300

    @property
    def gone(self) -> bool:
        return self.disable if self.outcome is not None else self.http_status == 410

    @property
    def answer(self) -> Answer:
        """What the answer means to the guardrails (domain/destinations/guardrails.py)."""
        if self.outcome is None:
            return classify(self.http_status, self.retry_after)
        if self.outcome == ACK:
            return Answer.SUCCESS
        if self.disable:
            return Answer.GONE
        if self.outcome == FAIL:
            return Answer.PERMANENT
        if self.pause and self.retry_after is not None:
            return Answer.RETRY
        return Answer.DOWN  # a nack, a lost connection, a 5xx: counts toward the breaker

    @property
    def pause_seconds(self) -> float | None:
        """Seconds the whole destination waits (a Retry-After, a connector's pause)."""
        if self.outcome is None or not self.pause:
            return pause_for(self.http_status, self.retry_after)
        return (
            None if self.retry_after is None else min(max(self.retry_after, 0.0), RETRY_AFTER_CAP)
        )

    @property
    def permanent(self) -> bool:
        """Failed for good after this attempt, whatever attempts are left."""
        if self.outcome is not None:
            return self.outcome == FAIL or self.disable
        return is_permanent(self.http_status)

    def deferral(self, policy: RetryPolicy) -> float | None:
        """Seconds a receiver's wait defers the next attempt without counting it."""
        if self.outcome is not None and self.pause and self.retry_after is not None:
            return max(min(self.retry_after, policy.retry_after_cap), policy.delay(_counted(self)))
        return policy.deferral(self.http_status, self.retry_after, _counted(self))


@dataclass(frozen=True, slots=True)
class Recorded:
    delivered: list[AttemptResult]
    retried: list[AttemptResult]
    failed: list[AttemptResult]


def _due(now: datetime) -> Any:
    # `read = false`, not `read IS false`: only the former matches the partial indexes'
    # predicate, without which every claim sorts the whole backlog (bench/drain.py (c)).
    return and_(
        is_unread(),
        N.c.status == NotificationStatus.PENDING,
        N.c.next_attempt_at <= now,
        or_(N.c.claimed_until.is_(None), N.c.claimed_until < now),
    )


def _any_due(now: datetime, targets: Sequence[str]) -> Any:
    # A target's earliest due time, read off idx_crm_notifications_claim in one index probe
    # and evaluated once per claim (an InitPlan): when every pending row waits in backoff, the
    # claim stops here instead of walking the whole backlog in priority order to find nothing
    # (the planner cannot know pending rows are the ones in the future; issue 14).
    return or_(
        *(
            select(func.min(N.c.next_attempt_at))
            .where(
                N.c.target_system == target,
                is_unread(),
                N.c.status == NotificationStatus.PENDING,
                or_(N.c.claimed_until.is_(None), N.c.claimed_until < now),
            )
            .scalar_subquery()
            <= now
            for target in targets
        )
    )


async def claim_due(
    conn: AsyncConnection,
    worker_id: str,
    targets: Sequence[str],
    limit: int,
    lease: timedelta,
) -> list[Claimed]:
    """Lease up to `limit` due rows: HIGH > NORMAL > LOW, oldest first, skipping locked rows.

    One statement; two dispatchers never get the same row, and the rows of a dispatcher
    that died come back once its lease ends.
    """
    if not targets:
        return []
    now = utcnow()
    picked = (
        select(N.c.id)
        .where(_due(now), N.c.target_system.in_(targets), _any_due(now, targets))
        .order_by(N.c.priority_rank.desc(), N.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(N)
        .where(N.c.id.in_(picked))
        .values(claimed_until=now + lease, claimed_by=worker_id)
        .returning(
            N.c.id,
            N.c.type,
            N.c.target_system,
            N.c.priority,
            N.c.data,
            N.c.created_at,
            N.c.attempts,
            N.c.request_id,
            N.c.priority_rank,
            N.c.counted_attempts,
        )
    )
    rows = sorted((await conn.execute(stmt)).all(), key=lambda r: (-r.priority_rank, r.created_at))
    return [
        Claimed(
            r.id,
            str(r.type),
            r.target_system,
            str(r.priority),
            r.data,
            r.created_at,
            r.attempts,
            r.request_id,
            r.counted_attempts,
        )
        for r in rows
    ]


async def record_results(
    conn: AsyncConnection, results: Iterable[AttemptResult], policy: RetryPolicy
) -> Recorded:
    """Write the attempts and their outcomes in a few batched statements.

    A 2xx marks the row read once (conditional on `read = false`); other outcomes are
    retried after the policy's backoff, or dead-lettered (FAILED) after a 4xx that waiting
    does not fix (410 Gone, 400, 401, ...: domain/destinations/guardrails.py) or the last
    allowed attempt. A 429/503 with Retry-After is logged as an attempt but not
    counted against the maximum, and the row waits at least what the receiver asked.
    """
    results = list(results)
    if not results:
        return Recorded([], [], [])
    now = utcnow()
    delivered = [r for r in results if r.delivered]
    undelivered = [r for r in results if not r.delivered]
    deferred = {id(r): wait for r in undelivered if (wait := r.deferral(policy)) is not None}
    await _insert_attempts(conn, results, deferred)
    failed = [
        r
        for r in undelivered
        if id(r) not in deferred and (r.permanent or policy.exhausted(_counted(r)))
    ]
    failed_ids = {id(r) for r in failed}  # by identity: no payload comparison per row
    retried = [r for r in undelivered if id(r) not in failed_ids]
    if delivered:
        await conn.execute(
            update(N)
            .where(_id_among(conn, [r.notification.id for r in delivered]), is_unread())
            .values(
                read=True,
                read_at=now,
                status=NotificationStatus.DELIVERED,
                attempts=N.c.attempts + 1,
                counted_attempts=N.c.counted_attempts + 1,
                claimed_until=None,
                claimed_by=None,
                last_error=None,
            )
        )
    changes = [
        {
            "b_id": r.notification.id,
            "b_status": (
                NotificationStatus.FAILED if id(r) in failed_ids else NotificationStatus.PENDING
            ),
            "b_next": now + timedelta(seconds=deferred.get(id(r), policy.delay(_counted(r)))),
            "b_failed_at": now if id(r) in failed_ids else None,
            "b_error": describe(r, deferred.get(id(r))),
            "b_counted": 0 if id(r) in deferred else 1,
        }
        for r in undelivered
    ]
    if changes:
        await conn.execute(
            update(N)
            .where(N.c.id == bindparam("b_id"), is_unread())
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                failed_at=bindparam("b_failed_at"),
                last_error=bindparam("b_error"),
                attempts=N.c.attempts + 1,
                counted_attempts=N.c.counted_attempts + bindparam("b_counted"),
                claimed_until=None,
                claimed_by=None,
            ),
            changes,
        )
    return Recorded(delivered, retried, failed)


def _counted(r: AttemptResult) -> int:
    """This attempt's number among those the retry policy counts."""
    return r.notification.counted_attempts + 1


async def _insert_attempts(
    conn: AsyncConnection, results: Sequence[AttemptResult], deferred: dict[int, float]
) -> None:
    rows = [
        (
            r.notification.id,
            r.notification.target_system,
            r.notification.attempts + 1,
            r.started_at,
            r.duration_ms,
            r.http_status,
            _deferral_note(deferred[id(r)]) if id(r) in deferred else r.error,
            (r.response_body or None) and r.response_body[:RESPONSE_EXCERPT],
        )
        for r in results
    ]
    if conn.dialect.name == "postgresql":
        columns = zip(*rows, strict=True)
        params = {f"a_{c}": list(v) for c, v in zip(_ATTEMPT_COLUMNS, columns, strict=True)}
        await conn.execute(_INSERT_ATTEMPTS_FROM_ARRAYS, params)
    else:
        await conn.execute(
            insert(ATTEMPTS), [dict(zip(_ATTEMPT_COLUMNS, r, strict=True)) for r in rows]
        )


def _id_among(conn: AsyncConnection, ids: list[uuid.UUID]) -> Any:
    """`id = ANY(array)` on PostgreSQL: one cached statement whatever the batch size."""
    if conn.dialect.name == "postgresql":
        return N.c.id == any_(bindparam("ids", ids, type_=ARRAY(N.c.id.type)))
    return N.c.id.in_(ids)


def _deferral_note(wait: float) -> str:
    return f"Retry-After: next attempt in {wait:g} s, not counted against the maximum"


def describe(result: AttemptResult, deferred: float | None = None) -> str:
    """The row's `last_error`: status, what went wrong (a redirect's Location), any deferral."""
    if result.http_status is None:
        return result.error or "unknown error"
    text = f"HTTP {result.http_status}"
    if result.error:
        text += f" ({result.error})"
    if deferred is not None:
        text += f" ({_deferral_note(deferred)})"
    return text


async def release(conn: AsyncConnection, worker_id: str, ids: Sequence[uuid.UUID]) -> int:
    """Give claimed rows back at once (graceful shutdown) instead of waiting for the lease."""
    if not ids:
        return 0
    done = await conn.execute(
        update(N)
        .where(N.c.id.in_(ids), N.c.claimed_by == worker_id, is_unread())
        .values(claimed_until=None, claimed_by=None)
    )
    return done.rowcount or 0


async def replay(conn: AsyncConnection, ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Send dead-lettered (FAILED) rows again: all of them, or those among `ids`.

    A fresh attempt budget (`counted_attempts`), but attempt numbers carry on (`attempts`
    is kept), so the attempt log never holds two attempts numbered 1.
    """
    cond = [N.c.status == NotificationStatus.FAILED, is_unread()]
    if ids is not None:
        cond.append(N.c.id.in_(ids))
    done = await conn.execute(
        update(N)
        .where(*cond)
        .values(
            status=NotificationStatus.PENDING,
            counted_attempts=0,
            next_attempt_at=utcnow(),
            failed_at=None,
            claimed_until=None,
            claimed_by=None,
        )
        .returning(N.c.id)
    )
    replayed = list(done.scalars())
    if replayed:
        mark_outbox_written(conn)
    return replayed


async def attempts_of(conn: AsyncConnection, notification_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(ATTEMPTS)
        .where(ATTEMPTS.c.notification_id == notification_id)
        .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def acknowledge(conn: AsyncConnection, target: str, notification_id: uuid.UUID) -> bool:
    """Pull-mode acknowledgement; False when the id is not this target's. Repeats are harmless."""
    found = await conn.execute(
        select(N.c.read).where(N.c.id == notification_id, N.c.target_system == target)
    )
    if found.first() is None:
        return False
    await conn.execute(
        update(N)
        .where(N.c.id == notification_id, is_unread())
        .values(
            read=True,
            read_at=utcnow(),
            status=NotificationStatus.DELIVERED,
            claimed_until=None,
            claimed_by=None,
        )
    )
    return True
