"""/api/admin/targets/{name}/test, /replay and /health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import rows
from tests.e2e.harness import Receiver, always
from tests.integration.test_destinations import NEW, registry_admin
from tests.integration.test_reporting_monitoring import add_notification


@pytest.fixture
def admin(make_client, settings, engine):
    return registry_admin(make_client, settings)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _create(admin, url: str) -> str:
    r = admin.post("/api/admin/targets", json={**NEW, "url": url})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def test_test_sends_a_signed_ping_now_and_reports_the_answer(admin, receiver):
    secret = _create(admin, receiver.url)
    r = admin.post("/api/admin/targets/SALESFORCE/test")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200 and body["error"] is None and body["durationMs"] >= 0
    (d,) = receiver.deliveries
    Webhook(secret).verify(d.body, d.headers)
    assert d.json["type"] == "PING" and d.json["targetSystem"] == "SALESFORCE"


def test_test_reports_an_error_status_and_never_follows_a_redirect(admin, receiver):
    _create(admin, receiver.url)
    receiver.behaviour = lambda _d, _n: (302, 0.0, {"Location": receiver.url + "/elsewhere"})
    body = admin.post("/api/admin/targets/SALESFORCE/test").json()
    assert body["status"] == 302 and "redirect" in body["error"]
    assert len(receiver.deliveries) == 1  # no second request to Location
    receiver.behaviour = always(500)
    assert admin.post("/api/admin/targets/SALESFORCE/test").json()["error"] == "HTTP 500"


def test_test_of_an_unreachable_receiver_is_an_answer_not_an_error(admin):
    _create(admin, "http://127.0.0.1:9/nothing-listens")
    body = admin.post("/api/admin/targets/SALESFORCE/test").json()
    assert body["status"] is None and body["error"]


def _age(engine, note_id: str, age: timedelta) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE crm_notifications SET created_at = now() - %(a)s WHERE id = %(i)s",
            {"a": age, "i": uuid.UUID(note_id)},
        )


def test_replay_makes_exactly_the_filtered_rows_due_again(admin, engine):
    _create(admin, "http://127.0.0.1:9/x")
    h = timedelta(hours=1)
    in_window = add_notification(engine, status="FAILED", target="SALESFORCE", age=2 * h)
    too_old = add_notification(engine, status="FAILED", target="SALESFORCE", age=5 * h)
    too_new = add_notification(engine, status="FAILED", target="SALESFORCE")
    other_target = add_notification(engine, status="FAILED", target="BZION_HUB", age=2 * h)
    delivered = add_notification(
        engine, status="DELIVERED", read=True, target="SALESFORCE", age=2 * h
    )
    now = datetime.now(UTC)
    window = {"since": (now - 3 * h).isoformat(), "until": (now - h).isoformat()}
    r = admin.post("/api/admin/targets/SALESFORCE/replay", json={"status": "FAILED", **window})
    assert r.status_code == 200, r.text
    assert r.json() == {"queued": 1}
    states = {str(x["id"]): x for x in rows(engine, "SELECT * FROM crm_notifications")}
    assert states[in_window]["status"] == "PENDING" and states[in_window]["failed_at"] is None
    assert states[in_window]["attempts"] == 3  # attempt numbers carry on
    for untouched in (too_old, too_new, other_target):
        assert states[untouched]["status"] == "FAILED"
    assert states[delivered]["status"] == "DELIVERED"
    # DELIVERED ones, by type: sent again (unread), same id.
    r = admin.post(
        "/api/admin/targets/SALESFORCE/replay", json={"status": "DELIVERED", "types": ["NEW_LEAD"]}
    )
    assert r.json() == {"queued": 1}
    (again,) = rows(engine, "SELECT * FROM crm_notifications WHERE id = :i", i=delivered)
    assert (again["status"], again["read"]) == ("PENDING", False)
    none = admin.post(
        "/api/admin/targets/SALESFORCE/replay", json={"types": ["QUOTE_REQUEST"]}
    ).json()
    assert none == {"queued": 0}


def test_replay_refuses_a_window_that_ends_before_it_starts(admin):
    _create(admin, "http://127.0.0.1:9/x")
    now = datetime.now(UTC)
    r = admin.post(
        "/api/admin/targets/SALESFORCE/replay",
        json={"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 400 and r.json()["field"] == "until"
    assert admin.post("/api/admin/targets/NOPE/replay", json={}).status_code == 404


def _attempt(engine, note_id: str, status: int | None, ms: float, error: str | None = None):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO crm_notification_attempts (notification_id, target_system, "
            "attempt_number, started_at, duration_ms, http_status, error) VALUES "
            "(%(n)s, 'SALESFORCE', 1, now() - interval '5 minutes', %(ms)s, %(s)s, %(e)s)",
            {"n": uuid.UUID(note_id), "ms": ms, "s": status, "e": error},
        )


def test_health_reports_backlog_last_hour_and_latency(admin, engine):
    _create(admin, "http://127.0.0.1:9/x")
    note = add_notification(engine, target="SALESFORCE", age=timedelta(minutes=10))
    add_notification(engine, target="SALESFORCE", age=timedelta(minutes=1))
    durations = [10.0 * i for i in range(1, 11)]  # 10..100 ms
    for ms in durations[:8]:
        _attempt(engine, note, 200, ms)
    _attempt(engine, note, 500, durations[8])
    _attempt(engine, note, None, durations[9], "timeout")
    r = admin.get("/api/admin/targets/SALESFORCE/health")
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["unread"] == 2
    assert 590 <= h["oldestUnreadAgeSeconds"] < 700
    assert (h["deliveredLastHour"], h["failedLastHour"]) == (8, 2)
    assert h["latencyP50Ms"] == pytest.approx(55.0)  # percentile_cont of 10..100
    assert h["latencyP99Ms"] == pytest.approx(99.1)
    assert h["lastError"] in ("timeout", "HTTP 500")
    assert (h["breakerState"], h["pausedUntil"]) == ("closed", None)
    assert admin.get("/api/admin/targets/BZION_HUB/health").json()["unread"] == 0
    assert admin.get("/api/admin/targets/NOPE/health").status_code == 404


def test_expired_rotated_out_secrets_are_dropped_by_the_cleanup(admin, engine):
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.destinations.registry import drop_expired_secrets
    from infra.settings import async_url

    _create(admin, "http://127.0.0.1:9/x")
    admin.post("/api/admin/targets/SALESFORCE/rotate-secret")
    url = engine.url.render_as_string(hide_password=False)

    async def cleanup(at: datetime) -> int:
        eng = create_async_engine(async_url(url))
        async with eng.begin() as conn:
            n = await drop_expired_secrets(conn, at)
        await eng.dispose()
        return n

    assert asyncio.run(cleanup(datetime.now(UTC))) == 0  # still within its 24 h overlap
    assert asyncio.run(cleanup(datetime.now(UTC) + timedelta(hours=25))) == 1
    (row,) = rows(engine, "SELECT secret_previous, secret_previous_expires_at FROM crm_targets")
    assert row == {"secret_previous": None, "secret_previous_expires_at": None}
