"""nats destinations, delivered by a real worker to the real NATS JetStream of this machine."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook

from tests.conftest import rows
from tests.e2e.brokers import NATS, delete_stream, jetstream_messages, unique
from tests.e2e.harness import wait_for
from tests.e2e.test_connector_rabbitmq import _notifications, _setup, _submit


def _attempts(engine, nid: str) -> int:
    return len(
        rows(engine, "SELECT id FROM crm_notification_attempts WHERE notification_id = :n", n=nid)
    )


def test_a_form_submission_arrives_through_jetstream_and_a_replay_is_deduplicated(
    make_stack, engine
):
    stream, prefix = unique("CRM_TEST_"), unique("crm.test.")
    try:
        _stack, worker, admin, secret = _setup(
            make_stack,
            kind="nats",
            url=NATS,
            options={"stream": stream, "subjectPrefix": prefix},
            events=["NEW_FORM_SUBMISSION"],
        )
        email = unique("form-") + "@x.io"
        _submit(admin, email)
        (nid,) = wait_for(lambda: _notifications(engine), 10, "the notification row")
        wait_for(lambda: _notifications(engine)[nid] == "DELIVERED", 15, "the PubAck")
        subject = f"{prefix}.NEW_FORM_SUBMISSION"
        (m,) = jetstream_messages(stream, subject)  # the stream was created on <prefix>.>
        assert m.routing_key == subject
        Webhook(secret).verify(m.body, m.headers)
        assert m.headers["Nats-Msg-Id"] == nid == m.headers["webhook-id"]
        assert json.loads(m.body)["data"]["email"] == email
        # Sent again (same notification, same Nats-Msg-Id): JetStream keeps one copy.
        r = admin.post("/api/admin/targets/EVENTS/replay", json={"status": "DELIVERED"})
        assert r.status_code == 200, r.text
        wait_for(lambda: _attempts(engine, nid) == 2, 15, "the second PubAck")
        assert _notifications(engine)[nid] == "DELIVERED"
        assert len(jetstream_messages(stream, subject)) == 1
        assert "connected to nats://127.0.0.1:4222" in worker.log()
    finally:
        delete_stream(stream)
