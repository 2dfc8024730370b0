"""Health: live, and ready = database reachable and migrated; the broker is reported, not required."""

from sqlalchemy import text

from infra.migrate import head_revision
from tests.e2e.harness import free_port


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
