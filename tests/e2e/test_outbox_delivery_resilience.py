"""Nothing lost: concurrent workers, a killed worker, a stopped Redis, stale-notification alerts."""

from __future__ import annotations

import collections
import shutil
import statistics
import subprocess
import time

from sqlalchemy import text

from tests.conftest import count, rows
from tests.e2e.harness import Receiver, free_port, wait_for


def seed_notifications(engine, n: int, target: str = "BZION_HUB") -> set[str]:
    with engine.begin() as conn:
        ids = conn.execute(
            text(
                "INSERT INTO crm_notifications (id, type, target_system, priority, data, read, "
                "created_at, status, attempts, next_attempt_at) "
                "SELECT gen_random_uuid(), 'NEW_LEAD', :t, "
                "(ARRAY['LOW','NORMAL','HIGH'])[1 + i % 3], jsonb_build_object('n', i), false, "
                "now() - make_interval(secs => :n - i), 'PENDING', 0, now() "
                "FROM generate_series(1, :n) AS i RETURNING id"
            ),
            {"t": target, "n": n},
        ).scalars()
        return {str(i) for i in ids}


def test_two_workers_deliver_1000_notifications_exactly_once(make_stack, engine):
    ids = seed_notifications(engine, 1000)
    stack = make_stack(CRM_BATCH_SIZE="50", CRM_DELIVERY_TIMEOUT="10")
    stack.worker(concurrency=2, name="a")
    stack.worker(concurrency=2, name="b")
    stack.beat()
    wait_for(lambda: count(engine, "crm_notifications", "read") == 1000, 60, "all 1000 read")
    received = collections.Counter(stack.receiver.ids())
    assert set(received) == ids
    assert set(received.values()) == {1}, "a notification was delivered twice"
    errors = rows(
        engine,
        "SELECT error, http_status, count(*) AS n FROM crm_notification_attempts GROUP BY 1, 2",
    )
    assert count(engine, "crm_notification_attempts") == 1000, errors
    assert (
        count(engine, "crm_notifications", "status = 'DELIVERED' AND read_at IS NOT NULL") == 1000
    )
    workers = {
        r["claimed_by"] for r in rows(engine, "SELECT DISTINCT claimed_by FROM crm_notifications")
    }
    assert workers == {None}  # every lease was released on acknowledgement


def test_high_priority_goes_first(make_stack, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO crm_notifications (id, type, target_system, priority, data, read, created_at, "
            "status, attempts, next_attempt_at) VALUES "
            "(gen_random_uuid(), 'NEW_LEAD', 'BZION_HUB', 'LOW', '{\"p\": \"LOW\"}', false, now() - interval '3 min', 'PENDING', 0, now()),"
            "(gen_random_uuid(), 'NEW_LEAD', 'BZION_HUB', 'NORMAL', '{\"p\": \"NORMAL\"}', false, now() - interval '2 min', 'PENDING', 0, now()),"
            "(gen_random_uuid(), 'NEW_LEAD', 'BZION_HUB', 'HIGH', '{\"p\": \"HIGH\"}', false, now() - interval '1 min', 'PENDING', 0, now())"
        )
    # One row a claim and one request in flight: the arrival order is the claim order (with
    # more in flight, a second lane's first request may connect and land before the first's).
    stack = make_stack(CRM_BATCH_SIZE="1", CRM_MAX_IN_FLIGHT="1")
    stack.worker(concurrency=1)
    stack.client().post("/api/newsletter-subscribe", json={"email": "wake@up.io"})  # wakes it
    wait_for(lambda: count(engine, "crm_notifications", "read") == 4, 20, "all delivered")
    order = [d.json["priority"] for d in stack.receiver.deliveries]
    assert order[:3] == ["HIGH", "NORMAL", "LOW"]


def test_a_worker_killed_mid_batch_loses_nothing(make_stack, engine):
    ids = seed_notifications(engine, 300)
    receiver = Receiver(behaviour=lambda d, nth: (200, 0.05)).start()
    stack = make_stack(receiver, CRM_LEASE_SECONDS="2", CRM_MAX_IN_FLIGHT="8", CRM_BATCH_SIZE="100")
    doomed = stack.worker(concurrency=1, name="doomed")
    stack.beat()
    wait_for(lambda: len(receiver.deliveries) >= 40, 30, "the first worker is mid-batch")
    doomed.kill()  # SIGKILL to the whole process group: no cleanup, leases stay
    assert count(engine, "crm_notifications", "NOT read AND claimed_until > now()") > 0
    stack.worker(concurrency=2, name="survivor")
    wait_for(lambda: count(engine, "crm_notifications", "read") == 300, 90, "all 300 read")
    received = collections.Counter(receiver.ids())
    assert set(received) == ids, "a notification was lost"
    # Repeats (rows the killed worker had sent but not acknowledged) carry the same webhook-id.
    assert sum(received.values()) >= 300


def _redis_server(port: int) -> subprocess.Popen:
    p = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    wait_for(lambda: _pings(redis.Redis(port=port)), 10, "redis up")
    return p


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_redis_stopped_the_api_still_commits_and_all_are_delivered_later(make_stack, engine):
    port = free_port()
    server = _redis_server(port)
    try:
        stack = make_stack(broker_url=f"redis://127.0.0.1:{port}/0")
        stack.worker()
        stack.beat()
        client = stack.client()
        assert (
            client.post(
                "/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"}
            ).status_code
            == 201
        )
        wait_for(lambda: len(stack.receiver.deliveries) == 1, 10, "delivery while Redis is up")

        server.terminate()
        server.wait(timeout=10)
        took = []
        for i in range(20):
            started = time.monotonic()
            r = client.post(
                "/api/forms/submit", json={"formType": "quote_request", "email": f"down{i}@b.io"}
            )
            took.append(time.monotonic() - started)
            assert r.status_code == 201
        # Waiting on the broker would cost its 1 s connect timeout, or more with retries.
        assert max(took) < 1.0, f"a submission waited {max(took):.2f}s on the broker"
        assert statistics.median(took) < 0.2, f"median {statistics.median(took):.2f}s"
        assert count(engine, "crm_notifications") == 21
        # A dispatch already running may keep draining from the database; nothing waits on Redis.

        server = _redis_server(port)
        wait_for(lambda: count(engine, "crm_notifications", "read") == 21, 60, "backlog delivered")
        assert len(set(stack.receiver.ids())) == 21
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_stale_alert_fires_once_per_episode_and_clears(make_stack, engine):
    alerts = Receiver().start()
    receiver = Receiver(port=free_port())  # the hub is down
    stack = make_stack(
        receiver,
        CRM_ALERT_WEBHOOK_URL=alerts.url,
        CRM_STALE_AFTER="1",
        CRM_STALE_CHECK_SECONDS="0.3",
        CRM_RETRY_SCHEDULE="0.5",
        CRM_BREAKER_PAUSE_SECONDS="0.5",  # the down hub opens the breaker: probe it soon
    )
    stack.worker()
    stack.beat()
    stack.client().post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    wait_for(lambda: alerts.deliveries, 10, "the stale alert")
    time.sleep(2.0)  # several more checks while the episode lasts
    texts = [d.json["text"] for d in alerts.deliveries]
    assert len(texts) == 1 and "unread for more than" in texts[0] and "BZION_HUB" in texts[0]

    receiver.start()
    wait_for(lambda: len(alerts.deliveries) == 2, 15, "the all-clear")
    assert "flowing again" in alerts.deliveries[1].json["text"]
    time.sleep(1.0)
    assert len(alerts.deliveries) == 2
    (episode,) = rows(engine, "SELECT closed_at FROM crm_alerts WHERE kind = 'stale_notifications'")
    assert episode["closed_at"] is not None
    alerts.stop()


def test_beat_stores_stats_snapshots(make_stack, engine):
    stack = make_stack(CRM_STATS_SECONDS="0.3")
    client = stack.client()
    client.post("/api/forms/submit", json={"formType": "quote_request", "email": "a@b.io"})
    client.post("/api/forms/submit", json={"formType": "contact_us", "email": "b@b.io"})
    client.post("/api/newsletter-subscribe", json={"email": "c@b.io"})
    stack.worker()
    stack.beat()
    snap = wait_for(
        lambda: rows(engine, "SELECT * FROM crm_stats_snapshots ORDER BY taken_at DESC LIMIT 1"),
        15,
        "a snapshot",
    )[0]
    assert (snap["total_leads"], snap["total_forms"], snap["total_subscribers"]) == (3, 2, 1)
    assert snap["average_lead_score"] == round((80 + 50 + 30) / 3, 2)
    assert snap["conversion_rate"] == 0.0
    assert set(snap["by_target"]) <= {"BZION_HUB"}
