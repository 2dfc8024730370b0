"""The quote lifecycle through HTTP: staff price, the customer negotiates and accepts, the
customer becomes ACTIVE and their lead CONVERTED; every step a notification row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import Engine, text

from domain.models import utcnow
from domain.quotes.expiry import expire_quotes
from infra.db import Database, with_database
from tests.conftest import rows, total_rows
from tests.integration.admin_support import admin_client, sign_in

BUYER, PASSWORD = "buyer@shop.example", "buyer-pass-123"
RFQ = {
    "email": BUYER,
    "name": "Bola Ade",
    "companyName": "Shop Ltd",
    "lines": [
        {"sku": "RICE-50KG", "quantity": 40, "unit": "bag"},
        {"sku": "OIL-5L", "quantity": 12},
    ],
}


def customer(make_client, email: str = BUYER) -> TestClient:
    client = make_client()
    reg = client.post(
        "/api/auth/register", json={"name": "Bola Ade", "email": email, "password": PASSWORD}
    )
    assert reg.status_code == 201, reg.text
    return sign_in(client, email, PASSWORD)


def request_quote(client: TestClient, email: str = BUYER) -> str:
    r = client.post("/api/v1/rfq/submit", json=RFQ | {"email": email})
    assert r.status_code == 201, r.text
    return str(r.json()["quoteId"])


def later(days: float = 14) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def pricing(quote: dict[str, Any], *prices: str, currency: str = "NGN") -> dict[str, Any]:
    lines = [{"id": ln["id"], "unitPrice": p} for ln, p in zip(quote["lines"], prices, strict=True)]
    return {"lines": lines, "currency": currency, "validUntil": later()}


class Outbox:
    """The notification rows written since the last look."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: set[Any] = {r["id"] for r in rows(engine, "SELECT id FROM crm_notifications")}

    def new(self) -> list[dict[str, Any]]:
        found = rows(
            self.engine, "SELECT id, type, data FROM crm_notifications ORDER BY created_at, type"
        )
        fresh = [r for r in found if r["id"] not in self.seen]
        self.seen |= {r["id"] for r in fresh}
        return fresh


def moves(notes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (n["data"]["from"], n["data"]["to"]) for n in notes if n["type"] == "QUOTE_STATUS_CHANGED"
    ]


def test_quote_lifecycle_from_rfq_to_accepted_converts_the_lead(make_client, settings, engine):
    buyer = customer(make_client)
    public = make_client()
    form = {"formType": "contact_us", "email": BUYER, "name": "Bola Ade"}
    assert public.post("/api/forms/submit", json=form).status_code == 201
    quote_id = request_quote(public)
    staff = admin_client(make_client, settings)
    outbox = Outbox(engine)

    mine = buyer.get("/api/v1/quotes").json()
    assert [q["id"] for q in mine["items"]] == [quote_id]
    listed = staff.get("/api/admin/quotes", params={"status": "SUBMITTED"}).json()
    assert quote_id in [q["id"] for q in listed["items"]]
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    assert quote["status"] == "SUBMITTED" and [ln["sku"] for ln in quote["lines"]] == [
        "RICE-50KG",
        "OIL-5L",
    ]

    # Staff price it: QUOTED, with a total.
    r = staff.post(f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "25000", "7500.50"))
    assert r.status_code == 200, r.text
    priced = r.json()
    assert priced["status"] == "QUOTED" and priced["currency"] == "NGN"
    assert priced["total"] == str(40 * 25000 + 12 * 7500.5) + "000"  # NUMERIC(18, 4)
    notes = outbox.new()
    assert moves(notes) == [("SUBMITTED", "QUOTED")]
    assert notes[0]["data"]["total"] == priced["total"] and notes[0]["data"]["changedBy"] == "STAFF"

    # The customer writes: NEGOTIATING.
    r = buyer.post(f"/api/v1/quotes/{quote_id}/messages", json={"body": "Can you do 24000?"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "NEGOTIATING"
    notes = outbox.new()
    assert sorted(n["type"] for n in notes) == ["QUOTE_MESSAGE", "QUOTE_STATUS_CHANGED"]
    assert moves(notes) == [("QUOTED", "NEGOTIATING")]
    (message,) = [n for n in notes if n["type"] == "QUOTE_MESSAGE"]
    assert (message["data"]["sender"], message["data"]["body"]) == ("CUSTOMER", "Can you do 24000?")

    # Staff answer and re-price: QUOTED again.
    r = staff.post(f"/api/admin/quotes/{quote_id}/messages", json={"body": "24500 is our best"})
    assert r.status_code == 201 and r.json()["status"] == "NEGOTIATING"
    assert [(n["type"], n["data"]["sender"]) for n in outbox.new()] == [("QUOTE_MESSAGE", "SALES")]
    r = staff.post(f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "24500", "7500.50"))
    assert r.status_code == 200 and r.json()["status"] == "QUOTED"
    assert moves(outbox.new()) == [("NEGOTIATING", "QUOTED")]

    # The customer accepts: ACCEPTED, the customer ACTIVE, the lead CONVERTED.
    r = buyer.post(f"/api/v1/quotes/{quote_id}/accept", json={"reason": "deal"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ACCEPTED" and r.json()["allowedStatuses"] == []
    notes = outbox.new()
    assert moves(notes) == [("QUOTED", "ACCEPTED")]
    (lead,) = rows(engine, "SELECT id, status, converted_at FROM leads WHERE email = :e", e=BUYER)
    assert lead["status"] == "CONVERTED" and lead["converted_at"] is not None
    (accepted,) = [n for n in notes if n["type"] == "QUOTE_STATUS_CHANGED"]
    assert accepted["data"]["convertedLeadIds"] == [str(lead["id"])]
    (converted,) = [n for n in notes if n["type"] == "LEAD_CONVERTED"]
    assert converted["data"]["leadId"] == str(lead["id"])
    assert converted["data"]["convertedByQuoteId"] == quote_id
    (cust,) = rows(engine, "SELECT status FROM customers WHERE email = :e", e=BUYER)
    assert cust["status"] == "ACTIVE"
    audit = rows(
        engine, "SELECT action, actor FROM lead_audit_entries WHERE lead_id = :i", i=lead["id"]
    )
    assert ("converted", BUYER) in [(a["action"], a["actor"]) for a in audit]

    # The history, as staff read it.
    detail = staff.get(f"/api/admin/quotes/{quote_id}").json()
    assert [e["type"] for e in detail["events"]] == [
        "CREATED",
        "PRICED",
        "STATUS_CHANGED",
        "MESSAGE",
        "STATUS_CHANGED",
        "MESSAGE",
        "PRICED",
        "STATUS_CHANGED",
        "STATUS_CHANGED",
    ]
    assert [m["sender"] for m in detail["messages"]] == ["CUSTOMER", "SALES"]
    assert [ln["unitPrice"] for ln in detail["lines"]] == ["24500.0000", "7500.5000"]


def test_staff_accepting_for_a_prospect_makes_the_customer_active(make_client, settings, engine):
    """An RFQ from someone without an account makes a PROSPECT; acceptance activates it."""
    public = make_client()
    quote_id = request_quote(public, "walkin@shop.example")
    staff = admin_client(make_client, settings)
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    assert staff.post(
        f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "1", "2")
    ).is_success
    (before,) = rows(engine, "SELECT status FROM customers WHERE email = 'walkin@shop.example'")
    assert before["status"] == "PROSPECT"
    r = staff.post(
        f"/api/admin/quotes/{quote_id}/status", json={"status": "ACCEPTED", "reason": "by phone"}
    )
    assert r.status_code == 200, r.text
    (after,) = rows(engine, "SELECT status FROM customers WHERE email = 'walkin@shop.example'")
    assert after["status"] == "ACTIVE"
    (note,) = rows(
        engine,
        "SELECT data FROM crm_notifications WHERE type = 'QUOTE_STATUS_CHANGED'"
        " AND data->>'to' = 'ACCEPTED'",
    )
    assert note["data"]["customerStatus"] == {"from": "PROSPECT", "to": "ACTIVE"}
    assert note["data"]["reason"] == "by phone"


def snapshot(engine: Engine, quote_id: str) -> dict[str, Any]:
    return {
        **total_rows(engine),
        "messages": rows(engine, "SELECT count(*) AS n FROM negotiation_messages")[0]["n"],
        "quote": rows(engine, "SELECT * FROM quotes WHERE id = :i", i=quote_id),
        "lines": rows(
            engine, "SELECT * FROM quote_lines WHERE quote_id = :i ORDER BY position", i=quote_id
        ),
        "customers": rows(engine, "SELECT status FROM customers"),
    }


def refused(r, *allowed: str) -> None:
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "illegal_transition" and body["field"] == "status"
    assert body["detail"].endswith("allowed: " + (", ".join(allowed) or "none")), body["detail"]


def test_illegal_quote_moves_are_409s_naming_the_allowed_ones_and_write_nothing(
    make_client, settings, engine
):
    buyer = customer(make_client)
    quote_id = request_quote(buyer)
    staff = admin_client(make_client, settings)
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    assert quote["allowedStatuses"] == ["QUOTED", "REJECTED", "EXPIRED"]

    before = snapshot(engine, quote_id)
    refused(buyer.post(f"/api/v1/quotes/{quote_id}/accept"))  # not priced yet
    refused(buyer.post(f"/api/v1/quotes/{quote_id}/reject"))
    refused(
        staff.post(f"/api/admin/quotes/{quote_id}/status", json={"status": "ACCEPTED"}),
        "QUOTED",
        "REJECTED",
        "EXPIRED",
    )
    r = staff.post(f"/api/admin/quotes/{quote_id}/status", json={"status": "QUOTED"})
    assert r.status_code == 409 and "no prices" in r.json()["detail"]  # price it instead
    bad_price = pricing(quote, "10", "-1")
    r = staff.post(f"/api/admin/quotes/{quote_id}/price", json=bad_price)
    assert r.status_code == 400 and r.json()["field"] == "lines[1].unitPrice"
    partial = pricing(quote, "10", "1") | {
        "lines": [{"id": quote["lines"][0]["id"], "unitPrice": 1}]
    }
    r = staff.post(f"/api/admin/quotes/{quote_id}/price", json=partial)
    assert r.status_code == 400 and r.json()["field"] == "lines"
    past = pricing(quote, "10", "1") | {"validUntil": later(-1)}
    r = staff.post(f"/api/admin/quotes/{quote_id}/price", json=past)
    assert r.status_code == 400 and r.json()["field"] == "validUntil"
    assert snapshot(engine, quote_id) == before

    assert staff.post(
        f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "10", "1")
    ).is_success
    refused(
        staff.post(f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "9", "1")),
        "ACCEPTED",
        "REJECTED",
        "EXPIRED",
    )
    assert buyer.post(f"/api/v1/quotes/{quote_id}/reject", json={"reason": "too dear"}).is_success
    before = snapshot(engine, quote_id)
    refused(buyer.post(f"/api/v1/quotes/{quote_id}/accept"))
    refused(staff.post(f"/api/admin/quotes/{quote_id}/status", json={"status": "QUOTED"}))
    refused(staff.post(f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "9", "1")))
    r = buyer.post(f"/api/v1/quotes/{quote_id}/messages", json={"body": "wait"})
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    assert snapshot(engine, quote_id) == before


def test_another_customers_quote_is_a_404_and_roles_are_kept_apart(make_client, settings, engine):
    owner = customer(make_client)
    quote_id = request_quote(owner)
    other = customer(make_client, "other@shop.example")
    request_quote(other, "other@shop.example")
    staff = admin_client(make_client, settings)
    before = total_rows(engine)

    assert [q["email"] for q in other.get("/api/v1/quotes").json()["items"]] == [
        "other@shop.example"
    ]
    assert other.get(f"/api/v1/quotes/{quote_id}").status_code == 404
    for action in ("accept", "reject"):
        assert other.post(f"/api/v1/quotes/{quote_id}/{action}").status_code == 404
    assert other.post(f"/api/v1/quotes/{quote_id}/messages", json={"body": "x"}).status_code == 404
    assert total_rows(engine) == before
    assert owner.get(f"/api/v1/quotes/{quote_id}").status_code == 200

    assert staff.get("/api/v1/quotes").status_code == 403  # staff are not customers
    assert owner.get("/api/admin/quotes").status_code == 403  # customers are not staff
    assert make_client().get("/api/v1/quotes").status_code == 401
    # CSRF applies as on the admin side: no token, no change.
    del owner.headers["x-csrftoken"]
    r = owner.post(f"/api/v1/quotes/{quote_id}/messages", json={"body": "hi"})
    assert r.status_code == 403
    assert total_rows(engine) == before


def test_staff_list_filters_by_status_and_customer_and_pages(make_client, settings, engine):
    public = make_client()
    ids = [request_quote(public, f"b{i}@shop.example") for i in range(3)]
    staff = admin_client(make_client, settings)
    first = staff.get("/api/admin/quotes", params={"limit": 2}).json()
    second = staff.get(
        "/api/admin/quotes", params={"limit": 2, "cursor": first["nextCursor"]}
    ).json()
    assert [q["id"] for q in first["items"] + second["items"]] == ids[::-1]
    assert second["nextCursor"] is None
    (cust,) = rows(engine, "SELECT id FROM customers WHERE email = 'b1@shop.example'")
    by_customer = staff.get("/api/admin/quotes", params={"customerId": str(cust["id"])}).json()
    assert [q["id"] for q in by_customer["items"]] == [ids[1]]
    assert staff.get("/api/admin/quotes", params={"status": "QUOTED"}).json()["items"] == []


def test_expiry_expires_priced_quotes_past_valid_until_and_unpriced_ones_past_expire_days(
    make_client, settings, engine
):
    public = make_client()
    staff = admin_client(make_client, settings)
    emails = ("priced-soon", "priced-later", "unpriced", "accepted")
    ids = dict(
        zip(emails, (request_quote(public, f"{e}@shop.example") for e in emails), strict=True)
    )
    for name, days in (("priced-soon", 2), ("priced-later", 60), ("accepted", 2)):
        quote = staff.get(f"/api/admin/quotes/{ids[name]}").json()
        body = pricing(quote, "1", "1") | {"validUntil": later(days)}
        assert staff.post(f"/api/admin/quotes/{ids[name]}/price", json=body).is_success
    accept = {"status": "ACCEPTED"}
    assert staff.post(f"/api/admin/quotes/{ids['accepted']}/status", json=accept).is_success
    expire_days = timedelta(days=30)

    def expire(days_ahead: float) -> int:
        async def go(db: Database) -> int:
            async with db.transaction() as conn:
                now = utcnow() + timedelta(days=days_ahead)
                return await expire_quotes(conn, now, expire_days, settings.routes)

        return with_database(settings, go)

    def statuses() -> dict[str, str]:
        found = {str(r["id"]): r["status"] for r in rows(engine, "SELECT id, status FROM quotes")}
        return {name: found[i] for name, i in ids.items()}

    outbox = Outbox(engine)
    assert expire(1) == 0
    assert expire(3) == 1  # past priced-soon's validUntil; unpriced is 3 days old, not 30
    assert statuses() == {
        "priced-soon": "EXPIRED",
        "priced-later": "QUOTED",
        "unpriced": "SUBMITTED",
        "accepted": "ACCEPTED",
    }
    assert expire(3) == 0  # a second run expires nothing twice
    assert expire(31) == 1  # unpriced for more than CRM_QUOTE_EXPIRE_DAYS
    assert statuses()["unpriced"] == "EXPIRED" and statuses()["priced-later"] == "QUOTED"
    notes = outbox.new()
    assert sorted(moves(notes)) == [("QUOTED", "EXPIRED"), ("SUBMITTED", "EXPIRED")]
    assert {n["data"]["changedBy"] for n in notes} == {"SYSTEM"}
    (event,) = rows(
        engine,
        "SELECT data FROM quote_events WHERE quote_id = :i AND type = 'STATUS_CHANGED'",
        i=ids["unpriced"],
    )
    assert event["data"] == {
        "from": "SUBMITTED",
        "to": "EXPIRED",
        "reason": "never priced",
        "by": "SYSTEM",
    }


def test_an_offer_past_valid_until_cannot_be_accepted(make_client, settings, engine):
    buyer = customer(make_client)
    quote_id = request_quote(buyer)
    staff = admin_client(make_client, settings)
    quote = staff.get(f"/api/admin/quotes/{quote_id}").json()
    assert staff.post(
        f"/api/admin/quotes/{quote_id}/price", json=pricing(quote, "1", "1")
    ).is_success
    with engine.begin() as conn:  # the offer ran out before the beat task came by
        conn.execute(
            text("UPDATE quotes SET valid_until = :t WHERE id = :i"),
            {"t": utcnow() - timedelta(minutes=1), "i": quote_id},
        )
    before = snapshot(engine, quote_id)
    r = buyer.post(f"/api/v1/quotes/{quote_id}/accept")
    assert r.status_code == 409 and "ran out" in r.json()["detail"]
    assert snapshot(engine, quote_id) == before
