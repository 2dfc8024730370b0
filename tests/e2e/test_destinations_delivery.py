"""Registry destinations delivered by a real worker to real loopback receivers, no restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api import directory
from tests.conftest import rows
from tests.e2e.harness import Receiver, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in

KEY = "a-long-enough-secret-key-for-the-tests-0123456789"
_n = count()


def _admin(stack):
    make_admin(stack.settings)
    return sign_in(stack.client(), ADMIN_EMAIL, ADMIN_PASSWORD)


def _lead(admin, score: int) -> str:
    email = f"lead{next(_n)}@x.io"
    r = admin.post("/api/admin/leads", json={"email": email, "leadScore": score})
    assert r.status_code == 201, r.text
    return email


def _by_email(receiver: Receiver, email: str):
    return [d for d in list(receiver.deliveries) if d.json["data"].get("email") == email]


def _routed_in_api(admin, name: str) -> bool:
    return name in {r.target for r in directory.routes(admin.app.state)}


def test_a_destination_created_through_the_api_gets_only_matching_signed_notifications(
    make_stack, capfd
):
    stack = make_stack(CRM_SECRET_KEY=KEY)
    worker = stack.worker()
    stack.beat()
    admin = _admin(stack)
    sf = Receiver().start()
    try:
        r = admin.post(
            "/api/admin/targets",
            json={
                "name": "SALESFORCE",
                "kind": "webhook",
                "url": sf.url,
                "events": ["NEW_LEAD"],
                "minPriority": "HIGH",
            },
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        wait_for(lambda: _routed_in_api(admin, "SALESFORCE"), 5, "API routes to it")
        high, normal = _lead(admin, 90), _lead(admin, 60)
        quote = admin.post(
            "/api/forms/submit", json={"formType": "quote_request", "email": "q@x.io"}
        )
        assert quote.status_code == 201  # NEW_FORM_SUBMISSION, HIGH: not among its events
        # The env hub gets everything; once it has all three, SALESFORCE's share is final.
        wait_for(
            lambda: all(_by_email(stack.receiver, e) for e in (high, normal, "q@x.io")),
            15,
            "the env hub's deliveries",
        )
        (d,) = wait_for(lambda: _by_email(sf, high), 10, "the HIGH lead at SALESFORCE")
        Webhook(secret).verify(d.body, d.headers)
        assert d.json["targetSystem"] == "SALESFORCE" and d.json["priority"] == "HIGH"
        assert [x.json["data"]["email"] for x in sf.deliveries] == [high]
    finally:
        sf.stop()
    out = capfd.readouterr()
    for logged in (worker.log(), out.out, out.err):
        assert secret not in logged and secret.removeprefix("whsec_") not in logged


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new_one(make_stack):
    # 0.002 h = 7.2 s of overlap.
    stack = make_stack(CRM_SECRET_KEY=KEY, CRM_SECRET_OVERLAP_HOURS="0.002")
    stack.worker()
    stack.beat()
    admin = _admin(stack)
    sf = Receiver().start()
    try:
        old = admin.post("/api/admin/targets", json={"name": "SALESFORCE", "url": sf.url}).json()[
            "secret"
        ]
        wait_for(lambda: _routed_in_api(admin, "SALESFORCE"), 5, "API routes to it")
        rotated = admin.post("/api/admin/targets/SALESFORCE/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old and set(rotated.json()) == {"secret", "previousSecretExpiresAt"}
        expires = datetime.fromisoformat(rotated.json()["previousSecretExpiresAt"])

        def delivered_with(signatures: int):
            d = wait_for(lambda: _by_email(sf, email), 10, "a delivery")[0]
            return d if len(d.headers["webhook-signature"].split()) == signatures else None

        # Within the overlap (the worker follows within ~2 s): two signatures, each verifies.
        for _ in range(20):
            email = _lead(admin, 60)
            d = delivered_with(2)
            if d is not None:
                break
        else:
            pytest.fail("no delivery carried two signatures during the overlap")
        assert datetime.now(UTC) < expires
        Webhook(old).verify(d.body, d.headers)
        Webhook(new).verify(d.body, d.headers)
        # After it: only the new secret signs.
        wait_for(lambda: datetime.now(UTC) > expires, 10, "the overlap's end")
        email = _lead(admin, 60)
        d = wait_for(lambda: delivered_with(1), 10, "a delivery after the overlap")
        Webhook(new).verify(d.body, d.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(d.body, d.headers)
        assert "whsec_" not in admin.get("/api/admin/targets/SALESFORCE").text
    finally:
        sf.stop()


def test_filtered_replay_of_failed_rows_redelivers_exactly_those_with_their_webhook_id(
    make_stack, engine
):
    stack = make_stack(CRM_SECRET_KEY=KEY, CRM_MAX_ATTEMPTS="1")
    stack.worker()
    stack.beat()
    admin = _admin(stack)
    healthy = {"now": False}
    sf = Receiver(behaviour=lambda _d, _n: (200 if healthy["now"] else 500, 0.0)).start()
    try:
        created = admin.post("/api/admin/targets", json={"name": "SALESFORCE", "url": sf.url})
        assert created.status_code == 201, created.text
        wait_for(lambda: _routed_in_api(admin, "SALESFORCE"), 5, "API routes to it")
        emails = [_lead(admin, 60) for _ in range(3)]

        def notes() -> dict[str, dict]:
            found = rows(
                engine,
                "SELECT id, status, data->>'email' AS email FROM crm_notifications "
                "WHERE target_system = 'SALESFORCE'",
            )
            return {x["email"]: x for x in found}

        wait_for(
            lambda: len(n := notes()) == 3 and all(x["status"] == "FAILED" for x in n.values()),
            15,
            "three dead letters",
        )
        ids = {e: str(notes()[e]["id"]) for e in emails}
        ages = dict(zip(emails, ("2 hours", "5 hours", "0 hours"), strict=True))
        with engine.begin() as conn:
            for email, age in ages.items():
                conn.execute(
                    text(
                        "UPDATE crm_notifications SET created_at = now() - CAST(:a AS interval) "
                        "WHERE id = :i"
                    ),
                    {"a": age, "i": ids[email]},
                )
        healthy["now"] = True
        now = datetime.now(UTC)
        r = admin.post(
            "/api/admin/targets/SALESFORCE/replay",
            json={
                "status": "FAILED",
                "since": (now - timedelta(hours=3)).isoformat(),
                "until": (now - timedelta(hours=1)).isoformat(),
            },
        )
        assert r.json() == {"queued": 1}
        replayed = emails[0]
        wait_for(lambda: notes()[replayed]["status"] == "DELIVERED", 15, "the replayed row")
        redelivered = [d for d in sf.deliveries if d.json["data"]["email"] == replayed][-1]
        assert redelivered.headers["webhook-id"] == ids[replayed]
        assert {e: notes()[e]["status"] for e in emails[1:]} == dict.fromkeys(emails[1:], "FAILED")
        assert sorted(d.headers["webhook-id"] for d in sf.deliveries) == sorted(
            [*ids.values(), ids[replayed]]
        )
    finally:
        sf.stop()
