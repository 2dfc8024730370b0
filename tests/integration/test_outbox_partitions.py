"""Retention by partitions on PostgreSQL (domain/outbox/partitions.py, retention.py): partitions
made ahead and dropped whole; unread and FAILED rows, and their attempts, kept across a drop;
rows without a partition land in the DEFAULT one and move out when theirs is made.

The session database keeps the partitions a test makes, so each test works in periods of its
own (far past or far future) and retires the past ones it made."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from domain.models import utcnow
from domain.outbox.partitions import ensure_partitions, partitions_of, period_start
from domain.outbox.retention import Removed, purge_expired
from infra.db import Database, with_database
from tests.conftest import rows

WEEK = timedelta(days=7)
MONTH = timedelta(days=30)
TABLES = ("crm_notifications", "crm_notification_attempts")


def in_transaction(settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def go(db: Database) -> Any:
        async with db.transaction() as conn:
            return await work(conn)

    return with_database(settings, go)


def partitions(settings, table: str) -> list[tuple[datetime, datetime]]:
    found = in_transaction(settings, lambda conn: partitions_of(conn, table))
    return [(p.lower, p.upper) for p in found]


def add_notification(engine, created: datetime, read: bool, status: str, **extra: Any) -> str:
    note = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO crm_notifications (id, type, target_system, priority, data, read,"
                " read_at, created_at, status, attempts, next_attempt_at, last_error)"
                " VALUES (:i, 'NEW_LEAD', 'BZION_HUB', 'HIGH', '{\"k\": 1}', :r, :ra, :c, :s, 1,"
                " :c, :e)"
            ),
            {
                "i": note,
                "r": read,
                "ra": extra.get("read_at", created + timedelta(minutes=1) if read else None),
                "c": created,
                "s": status,
                "e": None if read else "HTTP 503",
            },
        )
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO crm_notification_attempts (notification_id, target_system,"
                    " attempt_number, started_at, duration_ms, http_status)"
                    " VALUES (:i, 'BZION_HUB', :n, :s, 12.5, :h)"
                ),
                {"i": note, "n": n, "s": created + n * timedelta(seconds=30), "h": 503},
            )
    return note


def where(engine, table: str, column: str, value: str) -> set[str]:
    """The partitions holding `table`'s rows whose `column` is `value`."""
    found = rows(
        engine, f"SELECT tableoid::regclass::text AS p FROM {table} WHERE {column} = :v", v=value
    )
    return {r["p"] for r in found}


def test_beat_makes_the_current_period_and_the_next_ones_once(settings, engine):
    now = utcnow() + 300 * WEEK  # periods no other test uses
    start = period_start(now, WEEK)

    made = in_transaction(settings, lambda conn: ensure_partitions(conn, now, WEEK))

    assert len(made) == 2 * 3
    for table in TABLES:
        covered = [p for p in partitions(settings, table) if p[1] > start]
        assert covered[:3] == [(start + k * WEEK, start + (k + 1) * WEEK) for k in range(3)]
    assert in_transaction(settings, lambda conn: ensure_partitions(conn, now, WEEK)) == []
    # made with room for the claim's HOT update (notifications only; attempts are not updated)
    options = {
        r["relname"]: r["reloptions"]
        for r in rows(
            engine,
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:names)",
            names=made,
        )
    }
    assert options == {
        n: (["fillfactor=75"] if n.startswith("crm_notifications_p") else None) for n in made
    }
    # a shorter period later fills only what is not covered yet
    later = now + 3 * WEEK
    made = in_transaction(settings, lambda conn: ensure_partitions(conn, later, timedelta(days=1)))
    assert len(made) == 2 * 3  # three days, each table
    assert partitions(settings, "crm_notifications")[-1][1] == period_start(
        later, timedelta(days=1)
    ) + timedelta(days=3)


def test_retention_drops_old_partitions_and_keeps_unread_failed_rows_and_their_attempts(
    engine, settings
):
    now = utcnow()
    old = period_start(now - 8 * WEEK, WEEK) + timedelta(days=2)
    in_transaction(settings, lambda conn: ensure_partitions(conn, old, WEEK, ahead=0))
    read_old = add_notification(engine, old, True, "DELIVERED")
    unread_old = add_notification(engine, old, False, "PENDING")
    failed_old = add_notification(engine, old, False, "FAILED")
    read_lately = add_notification(engine, old, True, "DELIVERED", read_at=now - timedelta(days=1))
    recent = add_notification(engine, now, True, "DELIVERED")
    assert where(engine, "crm_notifications", "id", read_old) == {
        f"crm_notifications_p{old - timedelta(days=2):%Y%m%d}"
    }
    before = {r["id"]: r for r in rows(engine, "SELECT * FROM crm_notifications")}
    attempts_before = {r["id"]: r for r in rows(engine, "SELECT * FROM crm_notification_attempts")}

    removed: Removed = in_transaction(
        settings, lambda conn: purge_expired(conn, now, MONTH, settings.idempotency_ttl)
    )

    assert removed.as_dict() == {"attempts": 4, "notifications": 1, "keys": 0, "partitions": 2}
    for table in TABLES:
        assert all(upper > now - MONTH for _, upper in partitions(settings, table))
    after = {r["id"]: r for r in rows(engine, "SELECT * FROM crm_notifications")}
    assert {str(i) for i in after} == {unread_old, failed_old, read_lately, recent}
    assert all(after[i] == before[i] for i in after)  # moved with every value unchanged
    for note in (unread_old, failed_old, read_lately):
        assert where(engine, "crm_notifications", "id", note) == {"crm_notifications_kept"}
    attempts = {r["id"]: r for r in rows(engine, "SELECT * FROM crm_notification_attempts")}
    assert {str(a["notification_id"]) for a in attempts.values()} == {
        unread_old,
        failed_old,
        recent,
    }
    assert all(attempts[i] == attempts_before[i] for i in attempts)
    assert len(attempts) == 6
    for note in (unread_old, failed_old):
        assert where(engine, "crm_notification_attempts", "notification_id", note) == {
            "crm_notification_attempts_kept"
        }

    # A month on, the row read lately goes too (from the DEFAULT partition, by DELETE); the
    # unread and failed ones and their attempts still stay.
    later = now + MONTH + timedelta(days=1)
    removed = in_transaction(
        settings, lambda conn: purge_expired(conn, later, MONTH, settings.idempotency_ttl)
    )
    kept = {str(r["id"]) for r in rows(engine, "SELECT id FROM crm_notifications")}
    assert unread_old in kept and failed_old in kept and read_lately not in kept
    tried = {
        str(r["notification_id"])
        for r in rows(engine, "SELECT notification_id FROM crm_notification_attempts")
    }
    assert {unread_old, failed_old} <= tried
    in_transaction(settings, lambda conn: ensure_partitions(conn, now, WEEK))  # as it was


def test_row_with_no_partition_lands_in_default_and_moves_to_the_partition_made_later(
    engine, settings
):
    far = utcnow() + 200 * WEEK  # no partition covers it yet
    note = add_notification(engine, far, False, "PENDING")
    assert where(engine, "crm_notifications", "id", note) == {"crm_notifications_kept"}
    assert where(engine, "crm_notification_attempts", "notification_id", note) == {
        "crm_notification_attempts_kept"
    }
    before = rows(engine, "SELECT * FROM crm_notifications WHERE id = :i", i=note)

    made = in_transaction(settings, lambda conn: ensure_partitions(conn, far, WEEK))

    week = f"p{period_start(far, WEEK):%Y%m%d}"
    assert f"crm_notifications_{week}" in made and f"crm_notification_attempts_{week}" in made
    assert where(engine, "crm_notifications", "id", note) == {f"crm_notifications_{week}"}
    assert where(engine, "crm_notification_attempts", "notification_id", note) == {
        f"crm_notification_attempts_{week}"
    }
    assert rows(engine, "SELECT * FROM crm_notifications WHERE id = :i", i=note) == before
    # the attached partition carries the parent's indexes (the claim's, for one)
    claim = rows(
        engine,
        "SELECT i.indexrelid::regclass::text AS name FROM pg_index i"
        " WHERE i.indrelid = CAST(:t AS regclass) AND pg_get_indexdef(i.indexrelid) LIKE"
        " '%(target_system, next_attempt_at)%'",
        t=f"crm_notifications_{week}",
    )
    assert len(claim) == 1


def test_retention_retires_the_oldest_periods_first_one_transaction_each(engine, settings):
    now = utcnow()
    oldest = period_start(now - 12 * WEEK, WEEK)
    in_transaction(settings, lambda conn: ensure_partitions(conn, oldest, WEEK, ahead=1))
    first = add_notification(engine, oldest + timedelta(hours=1), True, "DELIVERED")
    second = add_notification(engine, oldest + WEEK + timedelta(hours=1), True, "DELIVERED")

    def purge_one() -> Removed:
        return in_transaction(
            settings, lambda conn: purge_expired(conn, now, MONTH, settings.idempotency_ttl, 1)
        )

    assert purge_one().as_dict() == {"attempts": 2, "notifications": 1, "keys": 0, "partitions": 2}
    left = {str(r["id"]) for r in rows(engine, "SELECT id FROM crm_notifications")}
    assert first not in left and second in left
    assert purge_one().partitions == 2
    assert purge_one().partitions == 0
    assert rows(engine, "SELECT id FROM crm_notifications") == []
