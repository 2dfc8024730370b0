"""Seed rows finished: form types live in the rules only, form statuses follow their lead,
NEW_LEAD announces assignments with the one payload shape."""

import pytest

from domain import rules
from domain.enums import LeadType
from tests.conftest import count, rows
from tests.integration.admin_support import ADMIN_EMAIL, admin_client


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def test_a_form_type_added_to_the_rules_only_is_accepted_by_a_migrated_database(
    client, engine, monkeypatch
):
    form = {"formType": "webinar_signup", "email": "w@b.io", "name": "Web Inar"}
    refused = client.post("/api/forms/submit", json=form)
    assert refused.status_code == 400 and refused.json()["field"] == "formType"

    # One entry in the rules: no enum member, no migration (the database is at head).
    monkeypatch.setitem(rules.FORM_RULES, "webinar_signup", rules.FormRule(LeadType.LEAD, 45))
    r = client.post("/api/forms/submit", json=form)
    assert r.status_code == 201, r.text
    assert r.json()["leadScore"] == 45
    (saved,) = rows(engine, "SELECT form_type, status FROM form_submissions")
    assert saved == {"form_type": "webinar_signup", "status": "NEW"}
    (lead,) = rows(engine, "SELECT type, lead_score, metadata FROM leads")
    assert lead["type"] == "LEAD" and lead["lead_score"] == 45
    assert lead["metadata"]["formType"] == "webinar_signup"
    # The idempotent path (inside the request's transaction) takes it as well.
    keyed = client.post(
        "/api/forms/submit", json={**form, "email": "k@b.io"}, headers={"Idempotency-Key": "k1"}
    )
    assert keyed.status_code == 201, keyed.text
    assert count(engine, "form_submissions", "form_type = 'webinar_signup'") == 2


def test_a_form_becomes_processed_when_its_lead_is_contacted(client, admin, engine):
    posted = client.post("/api/forms/submit", json={"formType": "contact_us", "email": "p@b.io"})
    other = client.post("/api/forms/submit", json={"formType": "contact_us", "email": "q@b.io"})
    lead_id = posted.json()["leadId"]
    r = admin.patch(f"/api/admin/leads/{lead_id}", json={"status": "CONTACTED"})
    assert r.status_code == 200, r.text
    statuses = {
        str(row["id"]): row["status"]
        for row in rows(engine, "SELECT id, status FROM form_submissions")
    }
    assert statuses == {
        posted.json()["formSubmissionId"]: "PROCESSED",
        other.json()["formSubmissionId"]: "NEW",
    }


def test_assigning_a_lead_emits_new_lead_with_the_creation_payload_shape(admin, engine):
    created = admin.post("/api/admin/leads", json={"email": "a@lead.io", "name": "A Lead"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    r = admin.patch(f"/api/admin/leads/{lead_id}", json={"assignedTo": "rep@crm.example"})
    assert r.status_code == 200, r.text
    notes = rows(
        engine,
        "SELECT type, data FROM crm_notifications WHERE type = 'NEW_LEAD' ORDER BY created_at",
    )
    assert len(notes) == 2
    on_create, on_assign = (n["data"] for n in notes)
    assert set(on_assign) == set(on_create)  # one payload shape
    assert on_create["event"] == "created" and on_create["assignedTo"] is None
    assert on_assign["event"] == "assigned" and on_assign["assignedTo"] == "rep@crm.example"
    assert on_assign["leadId"] == lead_id and on_assign["createdBy"] == ADMIN_EMAIL
    # Changing the score is not an assignment: no further NEW_LEAD.
    admin.patch(f"/api/admin/leads/{lead_id}", json={"leadScore": 90})
    assert count(engine, "crm_notifications", "type = 'NEW_LEAD'") == 2
