"""Retention on SQLite (domain/outbox/retention.py): the DELETE path, what goes after
CRM_RETENTION_DAYS, what stays. PostgreSQL drops partitions: test_outbox_partitions.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from domain.models import utcnow
from domain.outbox.retention import purge_expired
from infra.db import Database, make_sync_engine, with_database
from infra.migrate import upgrade
from infra.settings import Settings
from tests.conftest import rows

FORM = {"formType": "contact_us", "email": "a@b.io"}


def submit(client, key: str) -> str:
    r = client.post(
        "/api/forms/submit", json=FORM | {"name": key}, headers={"Idempotency-Key": key}
    )
    assert r.status_code == 201, r.text
    return r.json()["notificationId"]


@pytest.fixture
def sqlite_settings(tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    return Settings(database_url=url, rate_limit=None)


@pytest.fixture
def sqlite_engine(sqlite_settings: Settings) -> Iterator[Engine]:
    eng = make_sync_engine(sqlite_settings)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with TestClient(app=create_app(sqlite_settings)) as c:
        yield c


def test_sqlite_purge_removes_old_read_rows_old_attempts_and_expired_keys_only(
    sqlite_client, sqlite_engine, sqlite_settings
):
    client, engine, settings = sqlite_client, sqlite_engine, sqlite_settings
    old_read, recent_read, old_unread = (submit(client, k) for k in ("k-old", "k-new", "k-x"))
    now = utcnow()
    long_ago, yesterday = now - timedelta(days=40), now - timedelta(days=1)
    with engine.begin() as conn:
        for note, read, read_at, created in (
            (old_read, True, long_ago, long_ago),
            (recent_read, True, yesterday, long_ago),
            (old_unread, False, None, long_ago),  # still owed to its target: kept, however old
        ):
            conn.execute(
                text(
                    "UPDATE crm_notifications SET read=:r, read_at=:ra, created_at=:c WHERE id=:i"
                ),
                {"r": read, "ra": read_at, "c": created, "i": uuid.UUID(note).hex},
            )
            conn.execute(
                text(
                    "INSERT INTO crm_notification_attempts (notification_id, target_system,"
                    " attempt_number, started_at, duration_ms) VALUES (:i, 'BZION_HUB', 1, :s, 1)"
                ),
                {"i": uuid.UUID(note).hex, "s": created if note != recent_read else yesterday},
            )
        conn.execute(
            text("UPDATE idempotency_keys SET created_at=:c WHERE key='k-old'"),
            {"c": now - settings.idempotency_ttl - timedelta(minutes=1)},
        )

    async def purge(db: Database):
        async with db.transaction() as conn:
            return await purge_expired(conn, utcnow(), timedelta(days=30), settings.idempotency_ttl)

    removed = with_database(settings, purge)

    assert removed.as_dict() == {"attempts": 2, "notifications": 1, "keys": 1, "partitions": 0}
    kept = {str(uuid.UUID(r["id"])) for r in rows(engine, "SELECT id FROM crm_notifications")}
    assert kept == {recent_read, old_unread}
    attempts = rows(engine, "SELECT notification_id FROM crm_notification_attempts")
    assert [str(uuid.UUID(a["notification_id"])) for a in attempts] == [recent_read]
    keys = {r["key"] for r in rows(engine, "SELECT key FROM idempotency_keys")}
    assert keys == {"k-new", "k-x"}
