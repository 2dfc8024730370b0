"""Migration 0013 on a copy with data: the outbox tables become partitioned without losing a row,
and the downgrade gives the same rows back in plain tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from psycopg.rows import dict_row

from infra.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN_URL

NOTES = "SELECT * FROM crm_notifications ORDER BY id"
TRIES = "SELECT * FROM crm_notification_attempts ORDER BY id"
INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY indexname",
    (["crm_notifications", "crm_notification_attempts"],),
)
# (age, read, status): old and new, read, unread and dead-lettered rows
MIX = [
    ("50 days", True, "DELIVERED"),
    ("50 days", False, "PENDING"),
    ("50 days", False, "FAILED"),
    ("9 days", True, "DELIVERED"),
    ("9 days", False, "FAILED"),
    ("2 hours", False, "PENDING"),
    ("1 minute", True, "DELIVERED"),
]


@pytest.fixture
def db_at_0012() -> Iterator[str]:
    name = f"crm_test_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url, "0012")
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(url: str) -> None:
    with psycopg.connect(url) as conn:
        for i, (age, read, status) in enumerate(MIX):
            note = conn.execute(
                "INSERT INTO crm_notifications (id, type, target_system, priority, data, read,"
                " read_at, created_at, status, attempts, counted_attempts, next_attempt_at,"
                " last_error, failed_at) VALUES (gen_random_uuid(), 'NEW_LEAD', 'BZION_HUB',"
                " %(p)s, %(d)s, %(r)s, CASE WHEN %(r)s THEN now() - %(a)s::interval / 2 END,"
                " now() - %(a)s::interval, %(s)s::text, 2, 2, now(), %(e)s,"
                " CASE WHEN %(s)s::text = 'FAILED' THEN now() END) RETURNING id",
                {
                    "p": ("LOW", "NORMAL", "HIGH")[i % 3],
                    "d": psycopg.types.json.Jsonb({"leadId": i, "email": f"x{i}@y.io"}),
                    "r": read,
                    "a": age,
                    "s": status,
                    "e": None if read else f"HTTP 50{i}",
                },
            ).fetchone()
            assert note is not None
            for n in (1, 2):
                conn.execute(
                    "INSERT INTO crm_notification_attempts (notification_id, target_system,"
                    " attempt_number, started_at, duration_ms, http_status, error, response_body)"
                    " VALUES (%s, 'BZION_HUB', %s, now() - %s::interval + %s * interval '1 s',"
                    " %s, %s, %s, %s)",
                    (note[0], n, age, n, 10.5 * n, 200 if read else 503, None, "body"),
                )


def snapshot(url: str) -> tuple[list[dict], list[dict], list[str]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return (
            conn.execute(NOTES).fetchall(),
            conn.execute(TRIES).fetchall(),
            [r["indexname"] for r in conn.execute(*INDEXES)],
        )


def kinds(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname = ANY(%s)",
            (["crm_notifications", "crm_notification_attempts"],),
        )
        return {name: kind for name, kind in rows}


def test_0013_partitions_the_outbox_keeping_every_row_and_downgrade_gives_them_back(db_at_0012):
    url = db_at_0012
    fill(url)
    notes, tries, indexes = snapshot(url)
    assert len(notes) == len(MIX) and len(tries) == 2 * len(MIX)

    upgrade(url, "0013")

    assert kinds(url) == {"crm_notifications": "p", "crm_notification_attempts": "p"}
    after_notes, after_tries, after_indexes = snapshot(url)
    assert after_notes == notes  # every column, priority_rank included
    assert after_tries == tries
    parent_indexes = [i for i in after_indexes if not i.startswith(("crm_notification",))]
    assert parent_indexes == [i for i in indexes if not i.startswith("crm_notification")]
    with psycopg.connect(url) as conn:
        # rows went to weekly partitions, none to the DEFAULT ones
        placed = conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM crm_notifications GROUP BY 1"
        ).fetchall()
        assert sum(n for _, n in placed) == len(MIX)
        assert all(t.startswith("crm_notifications_p") for t, _ in placed)
        # the attempts' id sequence carries on
        note_id = notes[0]["id"]
        new_id = conn.execute(
            "INSERT INTO crm_notification_attempts (notification_id, target_system,"
            " attempt_number, started_at, duration_ms) VALUES (%s, 'BZION_HUB', 3, now(), 1)"
            " RETURNING id",
            (note_id,),
        ).fetchone()
        assert new_id is not None and new_id[0] > max(t["id"] for t in tries)
        conn.execute("DELETE FROM crm_notification_attempts WHERE id = %s", (new_id[0],))

    command.downgrade(alembic_config(url), "0012")

    assert kinds(url) == {"crm_notifications": "r", "crm_notification_attempts": "r"}
    assert snapshot(url) == (notes, tries, indexes)
    with psycopg.connect(url) as conn:
        fk = conn.execute(
            "SELECT confdeltype FROM pg_constraint WHERE conrelid ="
            " 'crm_notification_attempts'::regclass AND contype = 'f'"
        ).fetchone()
    assert fk == ("c",)  # ON DELETE CASCADE again


def fillfactors(url: str) -> dict[str, str | None]:
    """Each leaf partition of crm_notifications and its fillfactor option (None: the default)."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT c.relname, (SELECT o FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%')"
            " FROM pg_partition_tree('crm_notifications') t JOIN pg_class c ON c.oid = t.relid"
            " WHERE t.isleaf"
        )
        return dict(found.fetchall())


def test_0014_gives_every_notifications_partition_room_for_hot_claims(db_at_0012):
    url = db_at_0012
    fill(url)
    upgrade(url, "0013")
    before = fillfactors(url)
    assert len(before) >= 4 and set(before.values()) == {None}  # _kept and the weeks

    upgrade(url, "0014")
    assert fillfactors(url) == dict.fromkeys(before, "fillfactor=75")
    with psycopg.connect(url) as conn:  # the attempts are never updated: left as they were
        attempts = conn.execute(
            "SELECT count(*) FROM pg_partition_tree('crm_notification_attempts') t"
            " JOIN pg_class c ON c.oid = t.relid WHERE c.reloptions IS NOT NULL"
        ).fetchone()
        assert attempts == (0,)

    command.downgrade(alembic_config(url), "0013")
    assert fillfactors(url) == before
