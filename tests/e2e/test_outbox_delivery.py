"""Delivery through a real Celery worker to a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from standardwebhooks.webhooks import Webhook

from tests.conftest import rows
from tests.e2e.harness import ROOT, SECRET, Receiver, always, free_port, wait_for

FORM = {"formType": "quote_request", "email": "buyer@company.com", "name": "John Smith"}


def _state(engine, note_id):
    (row,) = rows(engine, "SELECT * FROM crm_notifications WHERE id = :i", i=note_id)
    return row


def _attempts(engine, note_id):
    return rows(
        engine,
        "SELECT attempt_number, http_status, error FROM crm_notification_attempts "
        "WHERE notification_id = :i ORDER BY attempt_number, started_at",
        i=note_id,
    )


def test_form_submission_arrives_signed_within_a_second(make_stack, engine):
    stack = make_stack()
    stack.worker()
    stack.beat()
    client = stack.client()
    client.post("/api/forms/submit", json={"formType": "contact_us", "email": "warm@up.io"})
    wait_for(lambda: len(stack.receiver.deliveries) == 1, 10, "warm-up delivery")

    started = time.monotonic()
    r = client.post("/api/forms/submit", json=FORM)
    assert r.status_code == 201
    note_id = r.json()["notificationId"]
    d = wait_for(
        lambda: next(
            (x for x in stack.receiver.deliveries if x.headers["webhook-id"] == note_id), None
        ),
        1.0,
        "the webhook within a second",
    )
    assert d.at - started < 1.0
    Webhook(SECRET).verify(d.body, d.headers)  # raises unless the signature is valid
    body = d.json
    assert body["id"] == note_id == d.headers["webhook-id"]
    assert (body["type"], body["targetSystem"], body["priority"]) == (
        "NEW_FORM_SUBMISSION",
        "BZION_HUB",
        "HIGH",
    )
    assert body["data"]["leadScore"] == 80 and body["data"]["email"] == "buyer@company.com"
    assert set(body) == {"id", "type", "targetSystem", "priority", "data", "createdAt"}
    assert d.headers["content-type"] == "application/json"
    row = wait_for(lambda: (s := _state(engine, note_id))["read"] and s, 5, "row marked read")
    assert row["read_at"] is not None and row["status"] == "DELIVERED"
    assert [a["http_status"] for a in _attempts(engine, note_id)] == [200]


def test_rotation_signs_with_every_active_secret(make_stack, engine):
    new_secret = "whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkhISE="
    stack = make_stack(CRM_TARGET_BZION_HUB_SECRET=f"{SECRET} {new_secret}")
    stack.worker()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    d = wait_for(lambda: stack.receiver.deliveries and stack.receiver.deliveries[0], 10, "delivery")
    assert d.headers["webhook-id"] == note_id
    assert len(d.headers["webhook-signature"].split()) == 2
    Webhook(SECRET).verify(d.body, d.headers)
    Webhook(new_secret).verify(d.body, d.headers)


def test_500_then_200_is_retried_delivered_and_logged(make_stack, engine):
    receiver = Receiver(behaviour=lambda d, nth: (500, 0) if nth == 1 else (200, 0)).start()
    stack = make_stack(receiver)
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["read"], 15, "delivery after a retry")
    assert [(a["attempt_number"], a["http_status"]) for a in _attempts(engine, note_id)] == [
        (1, 500),
        (2, 200),
    ]
    assert receiver.ids() == [note_id, note_id]  # the same webhook-id on the retry


def test_timeout_is_retried(make_stack, engine):
    receiver = Receiver(behaviour=lambda d, nth: (200, 1.5) if nth == 1 else (200, 0)).start()
    stack = make_stack(receiver, CRM_DELIVERY_TIMEOUT="0.5")
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["read"], 15, "delivery after a timeout")
    attempts = _attempts(engine, note_id)
    assert attempts[0]["error"] == "timeout" and attempts[0]["http_status"] is None
    assert attempts[-1]["http_status"] == 200


def test_connection_refused_is_retried_until_the_receiver_is_up(make_stack, engine):
    receiver = Receiver(port=free_port())  # not listening yet
    stack = make_stack(receiver)
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: len(_attempts(engine, note_id)) >= 2, 15, "refused attempts")
    assert all("connection" in a["error"] for a in _attempts(engine, note_id))
    assert not _state(engine, note_id)["read"]
    receiver.start()
    wait_for(lambda: _state(engine, note_id)["read"], 15, "delivery once the receiver is up")
    assert receiver.ids() == [note_id]


def test_410_gone_stops_at_once_and_alerts(make_stack, engine):
    alerts = Receiver().start()
    stack = make_stack(Receiver(behaviour=always(410)).start(), CRM_ALERT_WEBHOOK_URL=alerts.url)
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["status"] == "FAILED", 10, "dead-lettered row")
    time.sleep(1.0)  # several sweeps: a FAILED row is not tried again
    assert [a["http_status"] for a in _attempts(engine, note_id)] == [410]
    row = _state(engine, note_id)
    assert row["failed_at"] is not None and row["read"] is False
    # Two alerts, in either order: the row dead-lettered, and the destination disabled (410).
    wait_for(lambda: len(alerts.deliveries) >= 2, 5, "the dead-letter and disable alerts")
    texts = sorted(d.json["text"] for d in alerts.deliveries)
    assert len(texts) == 2 and all("BZION_HUB" in t and SECRET not in t for t in texts), texts
    assert any("dead-lettered" in t for t in texts) and any("disabled" in t for t in texts), texts
    alerts.stop()


def test_after_the_maximum_the_row_fails_then_replay_delivers_it(make_stack, engine):
    healthy = {"on": False}
    receiver = Receiver(behaviour=lambda d, nth: (200 if healthy["on"] else 503, 0)).start()
    stack = make_stack(receiver, CRM_MAX_ATTEMPTS="3")
    stack.worker()
    stack.beat()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    wait_for(lambda: _state(engine, note_id)["status"] == "FAILED", 15, "FAILED after 3 attempts")
    assert [a["http_status"] for a in _attempts(engine, note_id)] == [503, 503, 503]
    (alert,) = rows(engine, "SELECT kind, target_system, details FROM crm_alerts")
    assert alert["kind"] == "dead_letter" and alert["details"]["notificationIds"] == [note_id]

    healthy["on"] = True
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crm_cli import main; main()",
            "notifications",
            "replay",
            "--failed",
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [note_id]
    wait_for(lambda: _state(engine, note_id)["read"], 15, "delivery after replay")
    assert _state(engine, note_id)["status"] == "DELIVERED"
    assert receiver.ids().count(note_id) == 4


def test_replay_refuses_a_row_that_is_not_failed(make_stack, engine):
    stack = make_stack()
    note_id = stack.client().post("/api/forms/submit", json=FORM).json()["notificationId"]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crm_cli import main; main()",
            "notifications",
            "replay",
            note_id,
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "0 notification(s) re-queued" in done.stderr
    assert json.dumps(note_id) not in done.stdout
