"""rabbitmq destinations, delivered by a real worker to the real RabbitMQ of this machine."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook

from api import directory
from tests.conftest import rows
from tests.e2e.brokers import AMQP, RabbitQueue, close_rabbit_connections, unique
from tests.e2e.harness import wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in

KEY = "a-long-enough-secret-key-for-the-tests-0123456789"


def _setup(make_stack, **target):
    stack = make_stack(CRM_SECRET_KEY=KEY)
    worker = stack.worker()
    stack.beat()
    make_admin(stack.settings)
    admin = sign_in(stack.client(), ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post("/api/admin/targets", json={"name": "EVENTS", "kind": "rabbitmq", **target})
    assert r.status_code == 201, r.text
    wait_for(lambda: "EVENTS" in {x.target for x in directory.routes(admin.app.state)}, 5, "routed")
    return stack, worker, admin, r.json()["secret"]


def _submit(admin, email: str) -> None:
    r = admin.post("/api/forms/submit", json={"formType": "contact_us", "email": email})
    assert r.status_code == 201, r.text


def _notifications(engine) -> dict[str, str]:
    found = rows(engine, "SELECT id, status FROM crm_notifications WHERE target_system = 'EVENTS'")
    return {str(r["id"]): str(r["status"]) for r in found}


def test_a_form_submission_arrives_on_a_queue_bound_to_crm_events_and_verifies(make_stack, engine):
    queue = RabbitQueue("crm.events", ("NEW_FORM_SUBMISSION",))
    try:
        _stack, worker, admin, secret = _setup(make_stack, url=AMQP, events=["NEW_FORM_SUBMISSION"])
        email = unique("form-") + "@x.io"
        _submit(admin, email)
        (nid,) = wait_for(lambda: _notifications(engine), 10, "the notification row")

        def arrived():
            return [m for m in queue.drain() if json.loads(m.body)["id"] == nid]

        (m,) = wait_for(arrived, 15, "the message on the queue")
        Webhook(secret).verify(m.body, m.headers)  # as a webhook receiver verifies it
        assert m.headers["webhook-id"] == nid == m.message_id
        assert m.routing_key == "NEW_FORM_SUBMISSION"
        assert m.content_type == "application/json" and m.persistent
        body = json.loads(m.body)
        assert body["type"] == "NEW_FORM_SUBMISSION" and body["data"]["email"] == email
        wait_for(lambda: _notifications(engine)[nid] == "DELIVERED", 10, "recorded delivered")
        attempt = rows(
            engine, "SELECT * FROM crm_notification_attempts WHERE target_system = 'EVENTS'"
        )
        assert [(a["http_status"], a["error"]) for a in attempt] == [(None, None)]
        assert "guest:guest" not in worker.log()
    finally:
        queue.delete()


def test_connections_killed_mid_stream_lose_nothing_and_repeats_keep_their_message_id(
    make_stack, engine
):
    exchange, tag = unique("crm.test."), unique("crm-test-conn-")
    queue = RabbitQueue(exchange, ("#",))
    try:
        _stack, worker, admin, _ = _setup(
            make_stack, url=f"{AMQP}?name={tag}", options={"exchange": exchange}
        )
        total, kills = 60, 0
        for i in range(total):
            _submit(admin, f"{tag}-{i}@x.io")
            if i % 15 == 7:  # while deliveries flow: the broker drops our connection
                wait_for(lambda: close_rabbit_connections(tag), 10, "a connection to kill")
                kills += 1
        ids = wait_for(
            lambda: (n := _notifications(engine)) and len(n) >= total and n, 10, "all the rows"
        )
        wait_for(
            lambda: all(s == "DELIVERED" for s in _notifications(engine).values()),
            60,
            "every notification confirmed",
        )
        received = queue.drain()
        by_id: dict[str, list[str | None]] = {}
        for m in received:
            by_id.setdefault(json.loads(m.body)["id"], []).append(m.message_id)
        assert set(by_id) == set(ids)  # nothing lost
        for nid, message_ids in by_id.items():
            assert set(message_ids) == {nid}  # a repeat carries the same message_id
        assert kills == 4 and worker.log().count("connected to amqp://***@127.0.0.1") >= 2
    finally:
        queue.delete()
