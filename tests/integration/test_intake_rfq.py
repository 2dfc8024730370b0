"""POST /api/v1/rfq/submit: Quote + lines + CREATED event + HIGH QUOTE_REQUEST notification."""

from tests.conftest import count, rows

RFQ = {
    "email": "Buyer@Shop.NG",
    "name": "Bola Ade",
    "companyName": "Shop NG",
    "message": "Best price please",
    "lines": [
        {"sku": "RICE-50KG", "quantity": 40, "unit": "bag"},
        {"sku": "OIL-5L", "quantity": 12},
    ],
}


def test_rfq_for_new_email_creates_prospect_customer_and_quote(client, engine):
    r = client.post("/api/v1/rfq/submit", json=RFQ)
    assert r.status_code == 201, r.text
    body = r.json()
    (customer,) = rows(engine, "SELECT * FROM customers")
    assert str(customer["id"]) == body["customerId"]
    assert (customer["email"], customer["status"]) == ("buyer@shop.ng", "PROSPECT")
    (quote,) = rows(engine, "SELECT * FROM quotes")
    assert str(quote["id"]) == body["quoteId"] and quote["reference"] == body["reference"]
    assert quote["customer_id"] == customer["id"] and quote["status"] == "SUBMITTED"
    lines = rows(engine, "SELECT sku, quantity, unit, position FROM quote_lines ORDER BY position")
    assert [(ln["sku"], ln["quantity"], ln["unit"]) for ln in lines] == [
        ("RICE-50KG", 40, "bag"),
        ("OIL-5L", 12, None),
    ]
    (event,) = rows(engine, "SELECT type, quote_id FROM quote_events")
    assert event["type"] == "CREATED" and event["quote_id"] == quote["id"]
    (note,) = rows(engine, "SELECT * FROM crm_notifications")
    assert (note["type"], note["priority"]) == ("QUOTE_REQUEST", "HIGH")
    assert note["data"]["quoteId"] == body["quoteId"] and len(note["data"]["lines"]) == 2


def test_rfq_links_the_existing_customer_and_user(client, engine):
    reg = client.post(
        "/api/auth/register",
        json={"name": "B A", "email": "buyer@shop.ng", "password": "pw-123456"},
    ).json()
    r = client.post("/api/v1/rfq/submit", json=RFQ)
    assert r.status_code == 201
    assert r.json()["customerId"] == reg["customerId"]
    assert count(engine, "customers") == 1
    (quote,) = rows(engine, "SELECT user_id FROM quotes")
    assert str(quote["user_id"]) == reg["user"]["id"]
