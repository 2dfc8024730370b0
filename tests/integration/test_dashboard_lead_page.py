"""The lead page /admin/leads/{id}: shows the lead, its custom fields, history and
notifications; moves, assigns and converts it through CSRF-protected forms (admin and sales)."""

import uuid

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


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def new_lead(admin, email="lead@acme.example", **extra):
    r = admin.post(
        "/api/admin/leads",
        json={"email": email, "name": "Ada Lovelace", "companyName": "Acme", **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_lead_page_shows_details_fields_history_and_notifications(admin, engine):
    field = admin.post(
        "/api/admin/custom-fields",
        json={"entity": "lead", "key": "budget", "label": "Budget", "type": "number"},
    )
    assert field.status_code == 201, field.text
    lead_id = new_lead(admin, customFields={"budget": 1200}, assignedTo="rep@crm.example")
    assert (
        admin.patch(f"/api/admin/leads/{lead_id}", json={"status": "CONTACTED"}).status_code == 200
    )
    page = admin.get(f"/admin/leads/{lead_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Ada Lovelace" in html and "lead@acme.example" in html
    assert "Budget" in html and "1200" in html
    assert 'data-table="history"' in html and "CONTACTED" in html
    (note_count,) = [
        r["n"]
        for r in rows(
            engine,
            "SELECT count(*) AS n FROM crm_notifications WHERE data->>'leadId' = :i",
            i=lead_id,
        )
    ]
    assert note_count > 0
    assert html.count("data-notification=") == note_count
    # Allowed moves only: from CONTACTED, never back to NEW.
    assert '<option value="QUALIFIED">' in html and '<option value="NEW">' not in html


def test_lead_page_refuses_customers_and_answers_404_for_an_unknown_lead(
    admin, make_client, settings, engine
):
    lead_id = new_lead(admin)
    sales = sales_client(make_client, settings, engine)
    assert sales.get(f"/admin/leads/{lead_id}").status_code == 200
    customer = customer_page_client(make_client)
    assert customer.get(f"/admin/leads/{lead_id}").status_code == 403
    missing = admin.get(f"/admin/leads/{uuid.uuid4()}")
    assert missing.status_code == 404 and "no lead with id" in missing.text


def test_move_assign_and_convert_from_the_lead_page(admin, engine):
    lead_id = new_lead(admin)
    page = f"/admin/leads/{lead_id}"
    token = token_of(admin, page)
    refused = submit(admin, f"{page}/status", None, status="CONTACTED")
    assert refused.status_code == 403
    assert rows(engine, "SELECT status FROM leads WHERE id = :i", i=lead_id)[0]["status"] == "NEW"

    moved = submit(admin, f"{page}/status", token, status="CONTACTED")
    assert (moved.status_code, moved.headers["location"]) == (303, page)
    assert "lead@acme.example is now CONTACTED" in notice(admin.get(page).text)
    assert submit(admin, f"{page}/status", token, status="QUALIFIED").status_code == 303
    assigned = submit(admin, f"{page}/assign", token, assigned_to="rep@crm.example")
    assert assigned.status_code == 303
    converted = submit(admin, f"{page}/convert", token)
    assert converted.status_code == 303
    (lead,) = rows(engine, "SELECT status, assigned_to FROM leads WHERE id = :i", i=lead_id)
    assert (lead["status"], lead["assigned_to"]) == ("CONVERTED", "rep@crm.example")
    assert count(engine, "customers", "email = 'lead@acme.example'") == 1
    after = admin.get(page).text
    assert "converted to a new customer" in notice(after)
    assert 'data-link="customer"' in after  # the customer made from it is one click away


def test_an_illegal_move_comes_back_as_a_notice_and_writes_nothing(admin, engine):
    lead_id = new_lead(admin)
    page = f"/admin/leads/{lead_id}"
    token = token_of(admin, page)
    audit = count(engine, "lead_audit_entries")
    r = submit(
        admin, f"{page}/status", token, status="QUALIFIED"
    )  # NEW -> QUALIFIED skips CONTACTED
    assert (r.status_code, r.headers["location"]) == (303, page)
    assert count(engine, "lead_audit_entries") == audit
    assert "cannot move" in notice(admin.get(page).text)
