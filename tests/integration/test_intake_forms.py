"""POST /api/forms/submit writes FormSubmission + scored Lead + NEW_FORM_SUBMISSION together."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from domain.outbox.queries import pull_statement
from infra.settings import Secret, Target
from tests.conftest import count, rows
from tests.integration.plan_support import declared_indexes_of

PULL_KEY = "pull-key-forms"

FORM = {
    "formType": "quote_request",
    "email": "  John.Smith@ABC-Corp.com ",
    "name": "John Smith",
    "companyName": "ABC Corp",
    "phone": "+234-801-234-5678",
    "message": "Need 40 pallets",
    "metadata": {"utmSource": "google", "utmCampaign": "summer_sale", "page": "/quote"},
}


def test_quote_request_form_creates_linked_rows_and_high_notification(client, engine):
    r = client.post("/api/forms/submit", json=FORM, headers={"User-Agent": "Mozilla/5.0 test"})
    assert r.status_code == 201, r.text
    body = r.json()
    form_id, lead_id, note_id = body["formSubmissionId"], body["leadId"], body["notificationId"]

    (form,) = rows(engine, "SELECT * FROM form_submissions")
    assert str(form["id"]) == form_id and form["form_type"] == "quote_request"
    assert form["status"] == "NEW" and form["user_agent"] == "Mozilla/5.0 test"
    assert form["ip_address"]
    assert form["data"]["email"] == "john.smith@abc-corp.com"
    assert form["data"]["message"] == "Need 40 pallets" and form["data"]["page"] == "/quote"

    (lead,) = rows(engine, "SELECT * FROM leads")
    assert str(lead["id"]) == lead_id
    assert (lead["type"], lead["lead_score"], lead["source"], lead["status"]) == (
        "QUOTE_REQUEST",
        80,
        "web_form",
        "NEW",
    )
    assert lead["email"] == "john.smith@abc-corp.com"
    assert lead["metadata"] == {
        "formSubmissionId": form_id,
        "formType": "quote_request",
        "utmSource": "google",
        "utmCampaign": "summer_sale",
    }

    (note,) = rows(engine, "SELECT * FROM crm_notifications")
    assert str(note["id"]) == note_id
    assert (note["type"], note["target_system"], note["priority"], note["read"]) == (
        "NEW_FORM_SUBMISSION",
        "BZION_HUB",
        "HIGH",
        False,
    )
    assert note["read_at"] is None
    data = note["data"]
    assert set(data) == {
        "formSubmissionId",
        "leadId",
        "formType",
        "email",
        "name",
        "companyName",
        "phone",
        "leadScore",
        "submittedAt",
        "ipAddress",
        "userAgent",
    }
    assert data["formSubmissionId"] == form_id and data["leadId"] == lead_id
    assert data["leadScore"] == 80 and data["userAgent"] == "Mozilla/5.0 test"
    assert data["companyName"] == "ABC Corp" and data["phone"] == "+234-801-234-5678"


@pytest.mark.parametrize(
    ("form_type", "lead_type", "score", "priority"),
    [
        ("contact_us", "CONTACT_REQUEST", 50, "NORMAL"),
        ("quote_request", "QUOTE_REQUEST", 80, "HIGH"),
        ("partnership_inquiry", "LEAD", 70, "NORMAL"),
    ],
)
def test_each_form_type_scores_its_lead(client, engine, form_type, lead_type, score, priority):
    r = client.post("/api/forms/submit", json={"formType": form_type, "email": "a@b.io"})
    assert r.status_code == 201, r.text
    assert r.json()["leadScore"] == score
    (lead,) = rows(engine, "SELECT type, lead_score FROM leads")
    assert (lead["type"], lead["lead_score"]) == (lead_type, score)
    (note,) = rows(engine, "SELECT priority FROM crm_notifications")
    assert note["priority"] == priority


def test_routing_writes_one_outbox_row_per_target(make_client, engine):
    from domain.enums import NotificationType
    from infra.settings import Target

    targets = (
        Target("BZION_HUB", api_key=None, url="http://hub", secrets=()),
        Target("SALESFORCE", url="http://sf", events=frozenset({NotificationType.QUOTE_REQUEST})),
        Target(
            "PIPEDRIVE", url="http://pd", events=frozenset({NotificationType.NEW_FORM_SUBMISSION})
        ),
    )
    c = make_client(targets=targets)
    r = c.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    assert r.status_code == 201
    assert len(r.json()["notificationIds"]) == 2
    got = rows(engine, "SELECT target_system FROM crm_notifications ORDER BY target_system")
    assert [g["target_system"] for g in got] == ["BZION_HUB", "PIPEDRIVE"]


def test_forced_failure_between_inserts_leaves_no_orphan_row(client, engine):
    """A failing notification insert rolls back the form and the lead written before it."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER fail_notifications BEFORE INSERT ON crm_notifications "
            "FOR EACH ROW EXECUTE FUNCTION fail_insert()"
        )
    try:
        r = client.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
        assert r.status_code == 500
        assert r.json()["error"] == "internal_error"
        assert count(engine, "form_submissions") == 0
        assert count(engine, "leads") == 0
        assert count(engine, "crm_notifications") == 0
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER fail_notifications ON crm_notifications")
            conn.exec_driver_sql("DROP FUNCTION fail_insert()")


def test_unread_poll_orders_high_normal_low_then_oldest(make_client, engine):
    """The pull list (GET /api/v1/crm-notifications) puts HIGH before NORMAL before LOW and,
    within a priority, the oldest first, whatever order the rows were inserted in."""
    c = make_client(targets=(Target("BZION_HUB", api_key=Secret(PULL_KEY)),))
    ids = {}
    for name, form_type in (("newer", "contact_us"), ("older", "contact_us")):
        r = c.post("/api/forms/submit", json={"formType": form_type, "email": f"{name}@b.io"})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["notificationId"]
    r = c.post("/api/forms/submit", json={"formType": "quote_request", "email": "q@b.io"})
    ids["high"] = r.json()["notificationId"]
    assert c.post("/api/newsletter-subscribe", json={"email": "n@b.io"}).status_code == 201
    (low,) = rows(engine, "SELECT id FROM crm_notifications WHERE priority = 'LOW'")
    ids["low"] = str(low["id"])
    with engine.begin() as conn:  # the NORMAL row inserted first becomes the newer one
        conn.execute(
            text(
                "UPDATE crm_notifications SET created_at = now() + interval '1 hour' WHERE id = :i"
            ),
            {"i": ids["newer"]},
        )
    got = c.get(
        "/api/v1/crm-notifications",
        params={"targetSystem": "BZION_HUB", "read": "false"},
        headers={"X-API-Key": PULL_KEY},
    )
    assert got.status_code == 200, got.text
    assert [i["id"] for i in got.json()] == [ids["high"], ids["older"], ids["newer"], ids["low"]]
    assert [i["priority"] for i in got.json()] == ["HIGH", "NORMAL", "NORMAL", "LOW"]


def test_unread_poll_uses_the_partial_index(engine):
    """EXPLAIN of the product's own pull statement, compiled as it is sent to PostgreSQL."""
    stmt = pull_statement("BZION_HUB", read=False, limit=100)
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    assert "read = false" in sql, sql
    with engine.begin() as conn:
        assert declared_indexes_of(conn, sql) == {"idx_crm_notifications_unread"}


def test_ids_in_response_are_uuids(client, engine):
    r = client.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    assert r.status_code == 201, r.text
    body = r.json()
    for key in ("formSubmissionId", "leadId", "notificationId"):
        assert str(uuid.UUID(body[key])) == body[key], (key, body[key])  # canonical UUID text
    (form,) = rows(engine, "SELECT id FROM form_submissions")
    (lead,) = rows(engine, "SELECT id FROM leads")
    (note,) = rows(engine, "SELECT id FROM crm_notifications")
    assert (body["formSubmissionId"], body["leadId"], body["notificationId"]) == (
        str(form["id"]),
        str(lead["id"]),
        str(note["id"]),
    )
