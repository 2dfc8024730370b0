"""How the real worker treats a receiver's answer: redirects, slow replies, Retry-After, replays."""

from __future__ import annotations

import collections
import subprocess
import sys

from tests.conftest import rows
from tests.e2e.harness import ROOT, Receiver, always, wait_for
from tests.e2e.test_outbox_delivery import FORM, _state
from tests.e2e.test_outbox_delivery_resilience import seed_notifications


def _attempts(engine, note_id):
    """In the order they were made (a replay must not restart the numbers)."""
    return rows(
        engine,
        "SELECT attempt_number, http_status, error, started_at FROM crm_notification_attempts "
        "WHERE notification_id = :i ORDER BY started_at, id",
        i=note_id,
    )


def test_a_302_is_a_failed_attempt_and_is_never_followed(make_stack, engine):
    elsewhere = Receiver().start()  # answers 200 to anything, GET included
    redirecting = Receiver(behaviour=lambda d, n: (302, 0, {"Location": elsewhere.url})).start()
    stack = make_stack(redirecting)
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: len(_attempts(engine, note_id)) >= 2, 15, "two attempts")

    row = _state(engine, note_id)
    assert row["status"] == "PENDING" and not row["read"] and row["read_at"] is None
    attempts = _attempts(engine, note_id)
    assert {a["http_status"] for a in attempts} == {302}
    assert all(f"Location: {elsewhere.url}" in a["error"] for a in attempts)
    assert elsewhere.url in row["last_error"]
    assert elsewhere.deliveries == [], "the signed request went to the Location host"
    assert {d.method for d in redirecting.deliveries} == {"POST"}
    elsewhere.stop()


def test_a_slow_receiver_gets_each_notification_once_and_no_timeouts(make_stack, engine):
    ids = seed_notifications(engine, 16)
    receiver = Receiver(behaviour=lambda d, n: (200, 1.5)).start()
    stack = make_stack(
        receiver,
        CRM_DELIVERY_TIMEOUT="3",
        CRM_MAX_IN_FLIGHT="2",
        CRM_BATCH_SIZE="16",
        CRM_LEASE_SECONDS="7",
    )
    stack.worker(concurrency=2)
    stack.beat()
    wait_for(lambda: set(receiver.ids()) >= ids, 60, "all 16 received")
    wait_for(
        lambda: (
            rows(engine, "SELECT count(*) AS n FROM crm_notifications WHERE read")[0]["n"] == 16
        ),
        10,
        "all 16 read",
    )
    outcomes = rows(
        engine,
        "SELECT http_status, error, count(*) AS n FROM crm_notification_attempts GROUP BY 1, 2",
    )
    assert outcomes == [{"http_status": 200, "error": None, "n": 16}], outcomes
    received = collections.Counter(receiver.ids())
    assert set(received.values()) == {1}, "a notification was delivered twice"


def test_429_with_retry_after_waits_and_does_not_use_up_an_attempt(make_stack, engine):
    receiver = Receiver(
        behaviour=lambda d, n: (429, 0, {"Retry-After": "2"}) if n == 1 else (200, 0)
    ).start()
    # One attempt allowed: had the 429 counted, the row would be dead-lettered at once.
    stack = make_stack(receiver, CRM_MAX_ATTEMPTS="1")
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    (first,) = wait_for(lambda: _attempts(engine, note_id), 10, "the 429 attempt")
    row = _state(engine, note_id)  # committed with the attempt, seconds before the retry
    assert row["status"] == "PENDING" and row["counted_attempts"] == 0
    assert (row["next_attempt_at"] - first["started_at"]).total_seconds() >= 2.0
    wait_for(lambda: _state(engine, note_id)["read"], 15, "delivered after Retry-After")

    row = _state(engine, note_id)
    assert row["status"] == "DELIVERED"
    assert (row["attempts"], row["counted_attempts"]) == (2, 1)
    attempts = _attempts(engine, note_id)
    assert [(a["attempt_number"], a["http_status"]) for a in attempts] == [(1, 429), (2, 200)]
    assert "Retry-After" in attempts[0]["error"] and "not counted" in attempts[0]["error"]
    first_at, second_at = (d.at for d in receiver.deliveries)
    assert second_at - first_at >= 2.0


def _replay_failed(env: dict[str, str]) -> list[str]:
    command = ["notifications", "replay", "--failed"]
    done = subprocess.run(
        [sys.executable, "-c", "from crm_cli import main; main()", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_replay_continues_attempt_numbers_with_a_fresh_budget(make_stack, engine):
    receiver = Receiver(behaviour=always(503)).start()  # no Retry-After: each one counts
    stack = make_stack(receiver, CRM_MAX_ATTEMPTS="2")
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["status"] == "FAILED", 15, "FAILED after 2")
    assert _replay_failed(stack.env) == [note_id]
    wait_for(
        lambda: (
            len(_attempts(engine, note_id)) == 4 and _state(engine, note_id)["status"] == "FAILED"
        ),
        15,
        "FAILED again after 2 more attempts",
    )
    numbers = [a["attempt_number"] for a in _attempts(engine, note_id)]
    assert numbers == [1, 2, 3, 4]
    assert receiver.ids().count(note_id) == 4
