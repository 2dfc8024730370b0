"""The quote lifecycle's notifications reach a real receiver through a real Celery worker,
signed (verified with `standardwebhooks`); the expiry task runs from beat."""

from __future__ import annotations

from datetime import timedelta

from standardwebhooks.webhooks import Webhook

from domain.models import utcnow
from tests.conftest import rows
from tests.e2e.harness import SECRET, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in
from tests.integration.test_quotes import BUYER, PASSWORD, RFQ, pricing


def delivered(stack, engine) -> dict[str, dict]:
    """Every notification written so far, once each has arrived at the receiver (by id)."""
    ids = {str(r["id"]) for r in rows(engine, "SELECT id FROM crm_notifications")}

    def arrived():
        got = {d.headers["webhook-id"]: d for d in list(stack.receiver.deliveries)}
        return ids <= got.keys() and got

    got = wait_for(arrived, 15, f"{len(ids)} notifications delivered")
    for d in got.values():
        Webhook(SECRET).verify(d.body, d.headers)  # raises unless the signature is valid
    return {i: got[i].json for i in ids}


def test_every_step_of_the_lifecycle_is_delivered_signed(make_stack, engine):
    stack = make_stack()
    stack.worker()
    make_admin(stack.settings)
    staff = sign_in(stack.client(), ADMIN_EMAIL, ADMIN_PASSWORD)
    buyer = stack.client()
    reg = buyer.post(
        "/api/auth/register", json={"name": "Bola Ade", "email": BUYER, "password": PASSWORD}
    )
    assert reg.status_code == 201
    sign_in(buyer, BUYER, PASSWORD)
    form = {"formType": "quote_request", "email": BUYER, "name": "Bola Ade"}
    assert buyer.post("/api/forms/submit", json=form).status_code == 201
    quote_id = buyer.post("/api/v1/rfq/submit", json=RFQ).json()["quoteId"]
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    seen: set[str] = set(delivered(stack, engine))

    def step(response, *expected: str) -> list[dict]:
        """The step answered 2xx and its notifications, of these types, all arrived signed."""
        assert response.is_success, response.text
        bodies = delivered(stack, engine)
        fresh = [b for i, b in bodies.items() if i not in seen]
        seen.update(bodies)
        assert sorted(b["type"] for b in fresh) == sorted(expected)
        return fresh

    price = f"/api/admin/quotes/{quote_id}/price"
    (quoted,) = step(staff.post(price, json=pricing(quote, "100", "5")), "QUOTE_STATUS_CHANGED")
    assert (quoted["data"]["from"], quoted["data"]["to"]) == ("SUBMITTED", "QUOTED")
    step(
        buyer.post(f"/api/v1/quotes/{quote_id}/messages", json={"body": "90?"}),
        "QUOTE_MESSAGE",
        "QUOTE_STATUS_CHANGED",
    )
    (requoted,) = step(staff.post(price, json=pricing(quote, "95", "5")), "QUOTE_STATUS_CHANGED")
    assert (requoted["data"]["from"], requoted["data"]["to"]) == ("NEGOTIATING", "QUOTED")
    accepted = step(
        buyer.post(f"/api/v1/quotes/{quote_id}/accept"), "QUOTE_STATUS_CHANGED", "LEAD_CONVERTED"
    )
    by_type = {b["type"]: b for b in accepted}
    assert by_type["QUOTE_STATUS_CHANGED"]["data"]["to"] == "ACCEPTED"
    assert by_type["LEAD_CONVERTED"]["data"]["convertedByQuoteId"] == quote_id
    assert {b["targetSystem"] for b in accepted} == {"BZION_HUB"}


def test_beat_runs_the_expiry_task_and_its_notification_is_delivered(make_stack, engine):
    stack = make_stack(CRM_QUOTE_EXPIRY_CHECK_SECONDS="0.5")  # beat checks every half second
    stack.worker()
    stack.beat()
    make_admin(stack.settings)
    staff = sign_in(stack.client(), ADMIN_EMAIL, ADMIN_PASSWORD)
    quote_id = staff.post("/api/v1/rfq/submit", json=RFQ).json()["quoteId"]
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    soon = (utcnow() + timedelta(seconds=2)).isoformat()
    body = pricing(quote, "1", "1") | {"validUntil": soon}
    assert staff.post(f"/api/admin/quotes/{quote_id}/price", json=body).is_success

    def status() -> str:
        return str(rows(engine, "SELECT status FROM quotes WHERE id = :i", i=quote_id)[0]["status"])

    wait_for(lambda: status() == "EXPIRED", 20, "the quote expired by the beat task")
    bodies = delivered(stack, engine)
    expired = [
        b
        for b in bodies.values()
        if b["type"] == "QUOTE_STATUS_CHANGED" and b["data"]["to"] == "EXPIRED"
    ]
    assert [(b["data"]["quoteId"], b["data"]["changedBy"]) for b in expired] == [
        (quote_id, "SYSTEM")
    ]
