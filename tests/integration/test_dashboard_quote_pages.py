"""The Quotes tab and the quote page: rows link to the page; staff price every line (currency,
validUntil), reply in the thread and move the quote, through CSRF-protected forms."""

import re
import uuid
from datetime import date, timedelta

import pytest

from tests.conftest import count, rows
from tests.integration.admin_support import admin_client
from tests.integration.page_support import (
    customer_page_client,
    notice,
    sales_client,
    submit,
    token_of,
)

RFQ = {
    "email": "buyer@shop.example",
    "name": "Bola Ade",
    "companyName": "Shop Ltd",
    "lines": [
        {"sku": "RICE-50KG", "quantity": 40, "unit": "bag"},
        {"sku": "OIL-5L", "quantity": 12},
    ],
}


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def request_quote(client) -> str:
    r = client.post("/api/v1/rfq/submit", json=RFQ)
    assert r.status_code == 201, r.text
    return str(r.json()["quoteId"])


def line_ids(engine, quote_id):
    return [
        str(r["id"])
        for r in rows(
            engine, "SELECT id FROM quote_lines WHERE quote_id = :q ORDER BY position", q=quote_id
        )
    ]


def test_quotes_tab_links_rows_and_the_page_refuses_customers(
    admin, client, make_client, settings, engine
):
    quote_id = request_quote(client)
    tab = admin.get("/admin/quotes")
    assert tab.status_code == 200
    assert re.findall(r'href="(/admin/quotes/[^"]+)" data-link="quote"', tab.text) == [
        f"/admin/quotes/{quote_id}"
    ]
    assert 'data-link="quote"' not in admin.get("/admin/quotes", params={"status": "QUOTED"}).text
    page = admin.get(f"/admin/quotes/{quote_id}")
    assert page.status_code == 200 and "RICE-50KG" in page.text and "OIL-5L" in page.text
    assert (
        sales_client(make_client, settings, engine).get(f"/admin/quotes/{quote_id}").status_code
        == 200
    )
    assert customer_page_client(make_client).get(f"/admin/quotes/{quote_id}").status_code == 403
    assert admin.get(f"/admin/quotes/{uuid.uuid4()}").status_code == 404


def test_price_reply_and_reject_from_the_quote_page(admin, client, engine):
    quote_id = request_quote(client)
    page = f"/admin/quotes/{quote_id}"
    token = token_of(admin, page)
    rice, oil = line_ids(engine, quote_id)
    valid = (date.today() + timedelta(days=14)).isoformat()
    prices = {
        f"price_{rice}": "12.50",
        f"price_{oil}": "30",
        "currency": "ngn",
        "valid_until": valid,
    }

    assert submit(admin, f"{page}/price", None, **prices).status_code == 403
    assert (
        rows(engine, "SELECT status FROM quotes WHERE id = :q", q=quote_id)[0]["status"]
        == "SUBMITTED"
    )

    r = submit(admin, f"{page}/price", token, **prices)
    assert (r.status_code, r.headers["location"]) == (303, page)
    (quote,) = rows(
        engine, "SELECT status, currency, valid_until FROM quotes WHERE id = :q", q=quote_id
    )
    assert (quote["status"], quote["currency"]) == ("QUOTED", "NGN")
    assert quote["valid_until"].date().isoformat() == valid
    assert [
        float(r["unit_price"])
        for r in rows(
            engine,
            "SELECT unit_price FROM quote_lines WHERE quote_id = :q ORDER BY position",
            q=quote_id,
        )
    ] == [12.5, 30.0]
    shown = admin.get(page).text
    assert notice(shown).endswith("priced: 860.00 NGN.")
    assert "860.00 NGN" in shown

    assert submit(admin, f"{page}/messages", None, body="Hello").status_code == 403
    assert (
        submit(admin, f"{page}/messages", token, body="Delivery in two weeks.").status_code == 303
    )
    (msg,) = rows(
        engine, "SELECT sender, body FROM negotiation_messages WHERE quote_id = :q", q=quote_id
    )
    assert (msg["sender"], msg["body"]) == ("SALES", "Delivery in two weeks.")
    assert "Delivery in two weeks." in admin.get(page).text
    assert count(engine, "crm_notifications", "type = 'QUOTE_MESSAGE'") > 0

    moved = submit(admin, f"{page}/status", token, status="REJECTED", reason="out of stock")
    assert moved.status_code == 303
    assert (
        rows(engine, "SELECT status FROM quotes WHERE id = :q", q=quote_id)[0]["status"]
        == "REJECTED"
    )


def test_a_bad_price_or_illegal_move_is_a_notice_and_writes_nothing(admin, client, engine):
    quote_id = request_quote(client)
    page = f"/admin/quotes/{quote_id}"
    token = token_of(admin, page)
    rice, oil = line_ids(engine, quote_id)
    valid = (date.today() + timedelta(days=3)).isoformat()
    events = count(engine, "quote_events")
    bad = submit(
        admin,
        f"{page}/price",
        token,
        **{f"price_{rice}": "-1", f"price_{oil}": "2", "currency": "NGN", "valid_until": valid},
    )
    assert (bad.status_code, bad.headers["location"]) == (303, page)
    assert "unitPrice" in notice(admin.get(page).text)
    illegal = submit(admin, f"{page}/status", token, status="ACCEPTED")  # not from SUBMITTED
    assert illegal.status_code == 303
    assert "cannot move" in notice(admin.get(page).text)
    blank = submit(admin, f"{page}/messages", token, body="   ")
    assert blank.status_code == 303 and "blank" in notice(admin.get(page).text)
    assert count(engine, "quote_events") == events
    assert (
        rows(engine, "SELECT status FROM quotes WHERE id = :q", q=quote_id)[0]["status"]
        == "SUBMITTED"
    )
