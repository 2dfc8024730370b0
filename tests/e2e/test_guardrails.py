"""Guardrails per destination, end to end: real workers, Redis, PostgreSQL, loopback receivers."""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time

from sqlalchemy.ext.asyncio import create_async_engine

from domain.destinations.state import enable
from infra.settings import async_url
from tests.conftest import rows
from tests.e2e.harness import SECRET, Receiver, always, wait_for
from tests.e2e.test_outbox_delivery import FORM, _state
from tests.e2e.test_outbox_delivery_resilience import seed_notifications
from worker.guardrails import STATES_TTL


def _read(engine, target: str = "BZION_HUB") -> int:
    return rows(
        engine,
        "SELECT count(*) AS n FROM crm_notifications WHERE read AND target_system = :t",
        t=target,
    )[0]["n"]


def _attempts_by_outcome(engine, target: str = "BZION_HUB") -> list[dict]:
    return rows(
        engine,
        "SELECT http_status, error, count(*) AS n FROM crm_notification_attempts "
        "WHERE target_system = :t GROUP BY 1, 2 ORDER BY 1",
        t=target,
    )


def _other(receiver: Receiver, name: str = "OTHER", **settings: str) -> dict[str, str]:
    env = {f"CRM_TARGET_{name}_URL": receiver.url, f"CRM_TARGET_{name}_SECRET": SECRET}
    env.update({f"CRM_TARGET_{name}_{k}": v for k, v in settings.items()})
    return env


def test_retry_after_pauses_the_whole_destination(make_stack, engine):
    ids = seed_notifications(engine, 5)
    receiver = Receiver(
        behaviour=lambda d, n: (429, 0, {"Retry-After": "3"}) if d is first(d) else (200, 0)
    ).start()
    seen: list = []

    def first(d):  # the very first request the receiver ever gets
        if not seen:
            seen.append(d)
        return seen[0]

    stack = make_stack(receiver, CRM_TARGET_BZION_HUB_MAX_IN_FLIGHT="1")
    stack.worker()
    stack.beat()
    wait_for(lambda: _read(engine) == 5, 20, "all 5 delivered")
    arrivals = [d.at for d in receiver.deliveries]
    assert len(arrivals) == 6  # the 429, then each once
    # Not just the one row: no request at all reached the destination for 3 s.
    assert arrivals[1] - arrivals[0] >= 3.0, arrivals
    assert set(receiver.ids()) == ids
    assert {r["status"] for r in rows(engine, "SELECT status FROM crm_notifications")} == {
        "DELIVERED"
    }


def test_a_rate_limit_paces_deliveries_without_failing_any(make_stack, engine):
    limited, free = Receiver().start(), Receiver().start()
    stack = make_stack(limited, CRM_TARGET_BZION_HUB_RATE_LIMIT="5", **_other(free))
    seed_notifications(engine, 20)
    seed_notifications(engine, 20, target="OTHER")
    stack.worker(concurrency=2)
    stack.beat()
    wait_for(lambda: _read(engine) == 20 and _read(engine, "OTHER") == 20, 30, "all 40 read")
    span = limited.deliveries[-1].at - limited.deliveries[0].at
    free_span = free.deliveries[-1].at - free.deliveries[0].at
    assert span >= 3.0, span  # 20 at 5/s: one every 200 ms, about 4 s
    assert span < 8.0, span
    assert free_span < span / 3, (free_span, span)  # without a limit, much faster
    assert _attempts_by_outcome(engine) == [{"http_status": 200, "error": None, "n": 20}]
    counted = rows(engine, "SELECT DISTINCT counted_attempts AS c FROM crm_notifications")
    assert counted == [{"c": 1}]  # held back by the limit is not an attempt
    assert collections.Counter(limited.ids()).most_common(1)[0][1] == 1


def test_a_5xx_storm_opens_the_breaker_and_one_good_probe_closes_it(make_stack, engine):
    storm = {"left": 6}  # five failures open it, the first probe fails too, the next succeeds
    lock = threading.Lock()

    def stormy(_d, _n):
        with lock:
            storm["left"] -= 1
            return (500, 0.05) if storm["left"] >= 0 else (200, 0)

    down, healthy = Receiver(behaviour=stormy).start(), Receiver().start()
    stack = make_stack(
        down,
        CRM_TARGET_BZION_HUB_MAX_IN_FLIGHT="1",
        CRM_BREAKER_PAUSE_SECONDS="1",
        CRM_MAX_ATTEMPTS="50",
        **_other(healthy),
    )
    ids = seed_notifications(engine, 12)
    stack.worker(concurrency=1)
    stack.beat()
    wait_for(lambda: len(down.deliveries) >= 6, 20, "five failures and a probe")
    # While the breaker is open the other destination keeps its latency.
    started = time.monotonic()
    other_ids = seed_notifications(engine, 10, target="OTHER")
    wait_for(lambda: set(healthy.ids()) >= other_ids, 5, "the healthy destination's rows")
    assert max(d.at for d in healthy.deliveries) - started < 1.5
    wait_for(lambda: _read(engine) == 12, 30, "recovered: all 12 delivered")

    at = [d.at for d in down.deliveries]
    assert at[5] - at[4] >= 1.0, at  # open after 5 consecutive failures: 1 s (CRM_BREAKER_...)
    assert at[6] - at[5] >= 2.0, at  # the failed probe doubled the pause
    assert all(b - a < 1.0 for a, b in itertools.pairwise(at[:5])), at
    assert len(at) == 12 + 6  # one good probe closed it; nothing lost, nothing twice
    assert set(down.ids()) == ids and collections.Counter(down.ids()).most_common(1)[0][1] <= 7
    never_failed = rows(
        engine,
        "SELECT count(*) AS n FROM crm_notifications WHERE target_system = 'BZION_HUB' "
        "AND counted_attempts = 1",
    )[0]["n"]
    assert never_failed >= 12 - 6  # rows not claimed while open kept their retry budget
    assert rows(engine, "SELECT count(*) AS n FROM crm_notifications WHERE status = 'FAILED'") == [
        {"n": 0}
    ]


def test_a_400_is_not_retried_the_row_fails_with_its_status(make_stack, engine):
    receiver = Receiver(behaviour=always(400)).start()
    stack = make_stack(receiver)
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["status"] == "FAILED", 10, "FAILED after one")
    time.sleep(1.0)  # several sweeps (0.2 s): a FAILED row is not tried again
    assert _attempts_by_outcome(engine) == [{"http_status": 400, "error": None, "n": 1}]
    row = _state(engine, note_id)
    assert row["last_error"] == "HTTP 400" and row["counted_attempts"] == 1
    assert receiver.ids() == [note_id]


def test_410_disables_the_destination_with_an_alert_and_its_rows_wait(make_stack, engine, pg_url):
    alerts = Receiver().start()
    gone = {"on": True}
    receiver = Receiver(behaviour=lambda d, n: (410 if gone["on"] else 200, 0)).start()
    stack = make_stack(receiver, CRM_ALERT_WEBHOOK_URL=alerts.url)
    stack.worker()
    stack.beat()
    client = stack.client()
    first = client.post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, first)["status"] == "FAILED", 10, "the 410 row FAILED")
    (state,) = wait_for(
        lambda: rows(engine, "SELECT * FROM crm_target_state WHERE disabled_reason IS NOT NULL"),
        10,
        "destination disabled",
    )
    assert state["name"] == "BZION_HUB" and "410" in state["disabled_reason"]
    text = wait_for(
        lambda: next(
            (d.json["text"] for d in alerts.deliveries if "disabled" in d.json["text"]), None
        ),
        5,
        "the disable alert",
    )
    assert "BZION_HUB" in text and "410" in text
    kinds = {r["kind"] for r in rows(engine, "SELECT kind FROM crm_alerts")}
    assert "target_disabled" in kinds
    assert "alert target_disabled raised" in "".join(p.log() for p in stack.procs)

    gone["on"] = False
    # The pool process that saw the 410 stops at once; another one (running the sweeps while a
    # hot dispatch lingers) re-reads the destination's state within STATES_TTL.
    time.sleep(STATES_TTL)
    waiting = client.post("/api/forms/submit", json={**FORM, "email": "b@company.com"}).json()
    time.sleep(1.5)  # several sweeps: a disabled destination gets nothing
    assert receiver.ids() == [first]
    assert _state(engine, waiting["notificationId"])["status"] == "PENDING"

    async def enable_it() -> None:
        eng = create_async_engine(async_url(pg_url))
        async with eng.begin() as conn:
            assert await enable(conn, "BZION_HUB")
        await eng.dispose()

    asyncio.run(enable_it())
    wait_for(
        lambda: _state(engine, waiting["notificationId"])["read"], 10, "delivered once enabled"
    )
    alerts.stop()


def test_internal_addresses_are_refused_in_every_spelling(make_stack, engine):
    receiver = Receiver().start()
    port = receiver.port
    urls = {
        "E1": f"http://127.0.0.2:{port}/webhook",
        "E2": f"http://[::1]:{port}/webhook",
        "E3": f"http://2130706434:{port}/webhook",
        "E4": f"http://[::ffff:127.0.0.2]:{port}/webhook",
    }
    env = {}
    for name, url in urls.items():
        env.update({f"CRM_TARGET_{name}_URL": url, f"CRM_TARGET_{name}_SECRET": SECRET})
    stack = make_stack(receiver, **env)  # CRM_EGRESS_ALLOW=127.0.0.1/32 (harness)
    for name in urls:
        seed_notifications(engine, 1, target=name)
    stack.worker()
    stack.beat()
    for name in urls:
        (attempt, *_) = wait_for(lambda n=name: _attempts_by_outcome(engine, n), 10, name)
        assert attempt["http_status"] is None
        assert "egress refused" in attempt["error"], (name, attempt)
    assert receiver.deliveries == []


def test_a_slow_receiver_with_max_in_flight_8_never_times_out_waiting(make_stack, engine):
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(_d, _n):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(2.0)
        with lock:
            active["now"] -= 1
        return 200, 0

    receiver = Receiver(behaviour=slow).start()
    ids = seed_notifications(engine, 48)
    stack = make_stack(
        receiver,
        CRM_TARGET_BZION_HUB_MAX_IN_FLIGHT="8",
        CRM_DELIVERY_TIMEOUT="3",
        CRM_LEASE_SECONDS="10",
    )
    stack.worker(concurrency=1)
    stack.beat()
    wait_for(lambda: _read(engine) == 48, 60, "all 48 read")
    assert _attempts_by_outcome(engine) == [{"http_status": 200, "error": None, "n": 48}]
    assert active["max"] <= 8, active
    received = collections.Counter(receiver.ids())
    assert set(received) == ids and set(received.values()) == {1}
