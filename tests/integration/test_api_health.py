"""Health: live, and ready = database reachable and migrated; the broker is reported, not required."""

import concurrent.futures
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from infra.migrate import head_revision
from tests.e2e.harness import free_port
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin


def test_live(client):
    assert client.get("/health/live").json() == {"status": "ok"}


def test_ready_with_database_at_head_and_broker_up(client):
    r = client.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["database"]["ok"] is True
    assert body["database"]["migration"] == body["database"]["head"]
    assert body["broker"]["ok"] is True


def test_ready_without_the_broker_stays_ready_and_says_so(make_client):
    c = make_client(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    r = c.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["broker"]["ok"] is False
    assert "still accepted" in r.json()["broker"]["note"]


def test_not_ready_when_migrations_are_behind(client, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    try:
        r = client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["database"]["migration"] == "0001"
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE alembic_version SET version_num = :h"), {"h": head_revision()}
            )


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A broker that accepts connections and never answers (a hung or stopped Redis)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_ready_answers_within_a_second_and_a_half_whatever_the_broker_does(
    make_client, silent_broker, broker
):
    url = f"redis://127.0.0.1:{free_port()}/0" if broker == "closed" else silent_broker
    c = make_client(broker_url=url)
    for _ in range(2):
        started = time.monotonic()
        r = c.get("/health/ready")
        assert time.monotonic() - started < 1.5
        assert r.status_code == 200 and r.json()["broker"]["ok"] is False


def test_readiness_probes_on_a_dead_broker_do_not_slow_sign_in(
    make_client, settings, engine, silent_broker
):
    make_admin(settings)
    c = make_client(broker_url=silent_broker)

    def sign_in() -> float:
        started = time.monotonic()
        r = c.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        return time.monotonic() - started

    alone = min(sign_in() for _ in range(2))
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        probes = [pool.submit(c.get, "/health/ready") for _ in range(10)]
        time.sleep(0.2)  # let the probes take their threads first
        during = pool.submit(sign_in).result()
        assert all(p.result().status_code == 200 for p in probes)
    assert during < alone + 1.0, (alone, during)
