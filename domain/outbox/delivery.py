"""The outbox's delivery bookkeeping: claim due rows under a lease, record attempts, replay.

Statements are SQLAlchemy Core, run on async connections (worker and API alike).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.guardrails import (
    RETRY_AFTER_CAP,
    Answer,
    classify,
    is_permanent,
    pause_for,
)
from domain.enums import NotificationStatus
from domain.models import ATTEMPTS, NOTIFICATIONS, TARGET_STATE, utcnow
from domain.outbox.queries import is_unread
from domain.outbox.rows import mark_outbox_written
from domain.rules import RetryPolicy

N = NOTIFICATIONS
RESPONSE_EXCERPT = 1024
ACK, FAIL = "ack", "fail"  # worker/connectors/base.py Outcome values


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

    def body(self) -> bytes:
        """`payload()` as JSON, byte for byte, encoded without building the dict first."""
        return _BODY.encode(
            _Body(self.id, self.type, self.target_system, self.priority, self.data, self.created_at)
        )

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


class _Body(msgspec.Struct, rename="camel"):
    """The webhook body's fields in `payload()`'s order (msgspec encodes the id and the aware
    `created_at` as `payload()` spells them: UTC as `Z`)."""

    id: uuid.UUID
    type: str
    target_system: str
    priority: str
    data: dict[str, Any]
    created_at: datetime


_BODY = msgspec.json.Encoder()


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


def _due(now: Any) -> Any:
    # `read = false`, not `read IS false`: only the former matches the partial indexes'
    # predicate, without which every claim sorts the whole backlog (bench/drain.py (c)).
    return and_(
        is_unread(),
        N.c.status == NotificationStatus.PENDING,
        N.c.next_attempt_at <= now,
        or_(N.c.claimed_until.is_(None), N.c.claimed_until < now),
    )


def _any_due(now: Any, targets: Sequence[str]) -> Any:
    # A target's earliest due time, read off idx_crm_notifications_claim in one index probe
    # and evaluated once per claim (an InitPlan): when every pending row waits in backoff, the
    # claim stops here instead of walking the whole backlog in priority order to find nothing
    # (the planner cannot know pending rows are the ones in the future; issue 14).
    #
    # Then, only when something is due, that the target is not disabled (crm_target_state): a
    # destination disabled by one worker process gets nothing from the others either, even
    # while their cached copy of the state (worker/guardrails.py, STATES_TTL) is older.
    return or_(
        *(
            and_(
                select(func.min(N.c.next_attempt_at))
                .where(
                    N.c.target_system == target,
                    is_unread(),
                    N.c.status == NotificationStatus.PENDING,
                    or_(N.c.claimed_until.is_(None), N.c.claimed_until < now),
                )
                .scalar_subquery()
                <= now,
                ~exists().where(
                    TARGET_STATE.c.name == target, TARGET_STATE.c.disabled_reason.is_not(None)
                ),
            )
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
    stmt = _claim_statement(conn.dialect.name, tuple(targets))
    params = {"now": now, "limit": limit, "until": now + lease, "worker_id": worker_id}
    rows = [tuple(r) for r in (await conn.execute(stmt, params))]  # positional: cheaper
    rows.sort(key=lambda r: (-r[8], r[5]))  # priority_rank, created_at
    return [
        Claimed(id_, str(type_), target, str(priority), data, created_at, attempts, rid, counted)
        for (id_, type_, target, priority, data, created_at, attempts, rid, _, counted) in rows
    ]


@functools.lru_cache(maxsize=64)
def _claim_statement(dialect: str, targets: tuple[str, ...]) -> Any:
    """The claim, built once per dialect and set of targets (building it cost about a
    millisecond of CPU per claim); `now`, `limit`, `until` and `worker_id` are parameters."""
    now = bindparam("now", type_=N.c.next_attempt_at.type)  # the columns' own types (SQLite)
    picked = (
        select(N.c.id)
        .where(_due(now), N.c.target_system.in_(targets), _any_due(now, targets))
        .order_by(N.c.priority_rank.desc(), N.c.created_at)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(N)
        .where(_picked(dialect, picked))
        .values(
            claimed_until=bindparam("until", type_=N.c.claimed_until.type),
            claimed_by=bindparam("worker_id", type_=N.c.claimed_by.type),
        )
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


def _picked(dialect: str, picked: Any) -> Any:
    """The claim's `WHERE` on the rows `picked` (a locking scalar subquery of ids).

    PostgreSQL: the ids are collected once into an array (a materialized CTE) and the rows are
    found through the primary key, `id = ANY(ids)`, only when there is any: with
    `id IN (subquery)` the planner hash-joined the picked ids against a sequential scan of the
    whole table (6 of a 200-row claim's 16 ms on a 10,000-row backlog, growing with the table),
    and a claim that finds nothing due stays one probe of idx_crm_notifications_claim.
    """
    if dialect != "postgresql":
        return N.c.id.in_(picked)
    ids = select(func.array(picked).label("ids")).cte("picked").prefix_with("MATERIALIZED")
    return and_(
        select(func.cardinality(ids.c.ids)).scalar_subquery() > 0,
        N.c.id == any_(cast(select(ids.c.ids).scalar_subquery(), ARRAY(Uuid))),
    )


async def record_results(
    conn: AsyncConnection, results: Iterable[AttemptResult], policy: RetryPolicy
) -> Recorded:
    """Write the attempts and their outcomes: one statement on PostgreSQL, a few elsewhere.

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
    delivered: list[AttemptResult] = []
    retried: list[AttemptResult] = []
    failed: list[AttemptResult] = []
    outcomes: list[_Outcome] = []
    for r in results:
        if r.delivered:
            delivered.append(r)
            outcomes.append(_Outcome.of(r, r.error, True, NotificationStatus.DELIVERED, 1))
            continue
        deferred = r.deferral(policy)
        dead = deferred is None and (r.permanent or policy.exhausted(_counted(r)))
        (failed if dead else retried).append(r)
        wait = policy.delay(_counted(r)) if deferred is None else deferred
        outcomes.append(
            _Outcome.of(
                r,
                r.error if deferred is None else _deferral_note(deferred),
                False,
                NotificationStatus.FAILED if dead else NotificationStatus.PENDING,
                0 if deferred is not None else 1,
                next_attempt_at=now + timedelta(seconds=wait),
                failed_at=now if dead else None,
                last_error=describe(r, deferred),
            )
        )
    if conn.dialect.name == "postgresql":
        await conn.execute(_RECORD, {"outcomes": _OUTCOMES.encode(outcomes).decode(), "now": now})
    else:
        await _record_rows(conn, outcomes, now)
    return Recorded(delivered, retried, failed)


class _Outcome(msgspec.Struct, omit_defaults=False):
    """One attempt and what it does to its row: a row of `_RECORD`'s JSON parameter."""

    id: uuid.UUID
    target_system: str
    attempt_number: int
    started_at: datetime
    duration_ms: float
    http_status: int | None
    error: str | None
    response_body: str | None
    delivered: bool
    status: str
    counted: int  # added to counted_attempts
    # The row's partition key on PostgreSQL (migration 0013): with it the update probes one
    # partition's primary key instead of every partition's.
    created_at: datetime
    next_attempt_at: datetime | None = None  # None: unchanged (a delivered row)
    failed_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def of(
        cls,
        r: AttemptResult,
        error: str | None,
        delivered: bool,
        status: NotificationStatus,
        counted: int,
        **row: Any,
    ) -> _Outcome:
        n = r.notification
        return cls(
            n.id,
            n.target_system,
            n.attempts + 1,
            r.started_at,
            r.duration_ms,
            r.http_status,
            error,
            (r.response_body or None) and r.response_body[:RESPONSE_EXCERPT],
            delivered,
            status.value,
            counted,
            n.created_at,
            **row,
        )


_OUTCOMES = msgspec.json.Encoder()
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


def _record_statement() -> Any:
    """PostgreSQL: a batch's attempts and outcomes in one statement (one round trip, one cached
    plan): the rows arrive as one JSON array (msgspec-encoded: no per-value array dumping in the
    driver), the attempts are inserted in a data-modifying CTE, and every claimed row is updated
    from the same rows, conditional on `read = false` (a row is acknowledged once).

    A column the tables gain (a partition key) is one more field of `_Outcome` and one more
    line here."""
    Ts = DateTime(timezone=True)
    o = (
        select(
            func.jsonb_to_recordset(cast(bindparam("outcomes", type_=Text), JSONB))
            .table_valued(
                column("id", Uuid),
                column("target_system", Text),
                column("attempt_number", Integer),
                column("started_at", Ts),
                column("duration_ms", Float),
                column("http_status", SmallInteger),
                column("error", Text),
                column("response_body", Text),
                column("delivered", Boolean),
                column("status", Text),
                column("counted", Integer),
                column("created_at", Ts),
                column("next_attempt_at", Ts),
                column("failed_at", Ts),
                column("last_error", Text),
            )
            .render_derived(name="o", with_types=True)
        )
    ).cte("outcomes")
    attempts = insert(ATTEMPTS).from_select(
        _ATTEMPT_COLUMNS,
        select(
            o.c.id,
            o.c.target_system,
            o.c.attempt_number,
            o.c.started_at,
            o.c.duration_ms,
            o.c.http_status,
            o.c.error,
            o.c.response_body,
        ),
    )
    now = bindparam("now", type_=Ts)
    return (
        update(N)
        .add_cte(attempts.cte("attempts"))
        .where(N.c.id == o.c.id, N.c.created_at == o.c.created_at, is_unread())
        .values(
            read=o.c.delivered,
            read_at=case((o.c.delivered, now), else_=N.c.read_at),
            status=o.c.status,
            next_attempt_at=func.coalesce(o.c.next_attempt_at, N.c.next_attempt_at),
            failed_at=case((o.c.delivered, N.c.failed_at), else_=o.c.failed_at),
            last_error=o.c.last_error,
            attempts=N.c.attempts + 1,
            counted_attempts=N.c.counted_attempts + o.c.counted,
            claimed_until=None,
            claimed_by=None,
        )
    )


_RECORD = _record_statement()


async def _record_rows(conn: AsyncConnection, outcomes: Sequence[_Outcome], now: datetime) -> None:
    """SQLite: the same writes as `_RECORD`, in three statements."""
    await conn.execute(
        insert(ATTEMPTS),
        [dict(zip(_ATTEMPT_COLUMNS, _attempt_row(o), strict=True)) for o in outcomes],
    )
    acked = [o.id for o in outcomes if o.delivered]
    if acked:
        await conn.execute(
            update(N)
            .where(N.c.id.in_(acked), is_unread())
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
            "b_id": o.id,
            "b_status": o.status,
            "b_next": o.next_attempt_at,
            "b_failed_at": o.failed_at,
            "b_error": o.last_error,
            "b_counted": o.counted,
        }
        for o in outcomes
        if not o.delivered
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


def _attempt_row(o: _Outcome) -> tuple[Any, ...]:
    return (
        o.id,
        o.target_system,
        o.attempt_number,
        o.started_at,
        o.duration_ms,
        o.http_status,
        o.error,
        o.response_body,
    )


def _counted(r: AttemptResult) -> int:
    """This attempt's number among those the retry policy counts."""
    return r.notification.counted_attempts + 1


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
