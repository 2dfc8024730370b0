"""/api/admin/leads: list, filters, keyset pages, create, status moves, conversion, audit."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import count, rows
from tests.integration.admin_support import ADMIN_EMAIL, admin_client

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def add_lead(engine, email="lead@x.io", status="NEW", score=50, created=T0, **extra):
    lead_id = extra.pop("id", uuid.uuid4())
    values = {
        "id": lead_id,
        "email": email,
        "name": extra.pop("name", "Ada King Lovelace"),
        "company_name": extra.pop("company_name", "Engines Ltd"),
        "phone": extra.pop("phone", "+44 1"),
        "type": extra.pop("type", "LEAD"),
        "source": extra.pop("source", "web_form"),
        "status": status,
        "lead_score": score,
        "assigned_to": extra.pop("assigned_to", None),
        "created_at": created,
        "updated_at": created,
    }
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO leads (id, email, name, company_name, phone, type, source, status, "
            "lead_score, assigned_to, created_at, updated_at) VALUES (%(id)s, %(email)s, "
            "%(name)s, %(company_name)s, %(phone)s, %(type)s, %(source)s, %(status)s, "
            "%(lead_score)s, %(assigned_to)s, %(created_at)s, %(updated_at)s)",
            values,
        )
    return str(lead_id)


def test_create_lead_by_hand_is_manual_import_and_notifies_new_lead(admin, engine):
    r = admin.post(
        "/api/admin/leads",
        json={"email": " Jane@XYZ.example ", "name": "Jane Doe", "companyName": "XYZ Corp"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "jane@xyz.example" and body["source"] == "manual_import"
    assert body["status"] == "NEW" and body["leadScore"] == 60
    assert body["metadata"]["importedBy"] == ADMIN_EMAIL
    (note,) = rows(engine, "SELECT type, priority, data FROM crm_notifications")
    assert note["type"] == "NEW_LEAD" and note["priority"] == "NORMAL"
    assert note["data"]["leadId"] == body["id"] and note["data"]["source"] == "manual_import"
    audit = rows(
        engine, "SELECT actor, action, field, from_value, to_value FROM lead_audit_entries"
    )
    assert {(a["field"], a["from_value"], a["to_value"]) for a in audit} == {
        ("status", None, "NEW"),
        ("lead_score", None, "60"),
    }
    assert {a["actor"] for a in audit} == {ADMIN_EMAIL}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"email": "a@b.io", "leadScore": 101}, "leadScore"),
        ({"email": "a@b.io", "leadScore": -1}, "leadScore"),
        ({"email": "a@b.io", "type": "WHALE"}, "type"),
        ({"name": "no email"}, "email"),
    ],
)
def test_bad_new_lead_is_400_naming_the_field_and_writes_nothing(admin, engine, body, field):
    r = admin.post("/api/admin/leads", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert count(engine, "leads") == 0 and count(engine, "crm_notifications") == 0


def test_status_moves_through_the_pipeline_with_audit_and_converted_at(admin, engine):
    lead = add_lead(engine)
    for status in ("CONTACTED", "QUALIFIED"):
        r = admin.patch(f"/api/admin/leads/{lead}", json={"status": status})
        assert r.status_code == 200 and r.json()["status"] == status, r.text
        assert r.json()["convertedAt"] is None
    r = admin.patch(f"/api/admin/leads/{lead}", json={"status": "CONVERTED"})
    assert r.status_code == 200 and r.json()["convertedAt"] is not None
    history = admin.get(f"/api/admin/leads/{lead}/history").json()
    moves = [(h["from"], h["to"]) for h in history if h["field"] == "status"]
    assert moves == [("NEW", "CONTACTED"), ("CONTACTED", "QUALIFIED"), ("QUALIFIED", "CONVERTED")]
    assert all(h["actor"] == ADMIN_EMAIL and h["at"] for h in history)


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("NEW", "QUALIFIED", "CONTACTED, REJECTED"),
        ("NEW", "CONVERTED", "CONTACTED, REJECTED"),
        ("CONTACTED", "NEW", "QUALIFIED, REJECTED"),
        ("QUALIFIED", "CONTACTED", "CONVERTED, REJECTED"),
        ("REJECTED", "NEW", "none (final status)"),
        ("CONVERTED", "REJECTED", "none (final status)"),
    ],
)
def test_refused_move_is_409_naming_the_allowed_ones_and_writes_nothing(
    admin, engine, start, target, allowed
):
    lead = add_lead(engine, status=start)
    r = admin.patch(f"/api/admin/leads/{lead}", json={"status": target, "leadScore": 99})
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "status" and f"allowed: {allowed}" in r.json()["detail"]
    (row,) = rows(engine, "SELECT status, lead_score FROM leads")
    assert (row["status"], row["lead_score"]) == (start, 50)
    assert count(engine, "lead_audit_entries") == 0 and count(engine, "customers") == 0


@pytest.mark.parametrize("start", ["NEW", "CONTACTED", "QUALIFIED"])
def test_any_open_status_can_be_rejected(admin, engine, start):
    lead = add_lead(engine, status=start)
    r = admin.patch(f"/api/admin/leads/{lead}", json={"status": "REJECTED"})
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    assert r.json()["allowedStatuses"] == []


def test_assign_and_rescore_are_audited_and_null_unassigns(admin, engine):
    lead = add_lead(engine)
    r = admin.patch(
        f"/api/admin/leads/{lead}", json={"assignedTo": "rep@co.example", "leadScore": 85}
    )
    assert r.status_code == 200
    assert (r.json()["assignedTo"], r.json()["leadScore"]) == ("rep@co.example", 85)
    r = admin.patch(f"/api/admin/leads/{lead}", json={"assignedTo": None})
    assert r.json()["assignedTo"] is None
    audit = rows(engine, "SELECT field, from_value, to_value FROM lead_audit_entries ORDER BY id")
    assert [(a["field"], a["from_value"], a["to_value"]) for a in audit] == [
        ("assigned_to", None, "rep@co.example"),
        ("lead_score", "50", "85"),
        ("assigned_to", "rep@co.example", None),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"leadScore": 101}, "leadScore"),
        ({"status": "WON"}, "status"),
        ({}, "status"),
        ({"colour": "red"}, "body"),
    ],
)
def test_bad_patch_is_400_and_changes_nothing(admin, engine, body, field):
    lead = add_lead(engine)
    r = admin.patch(f"/api/admin/leads/{lead}", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert count(engine, "lead_audit_entries") == 0


def test_unknown_lead_is_404(admin, engine):
    missing = uuid.uuid4()
    assert admin.get(f"/api/admin/leads/{missing}").status_code == 404
    assert (
        admin.patch(f"/api/admin/leads/{missing}", json={"status": "CONTACTED"}).status_code == 404
    )
    assert admin.post(f"/api/admin/leads/{missing}/convert").status_code == 404


def test_convert_creates_a_lead_conversion_customer_in_one_go(admin, engine):
    lead = add_lead(engine, email="ada@engines.example", status="QUALIFIED", score=85)
    r = admin.post(f"/api/admin/leads/{lead}/convert")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customerCreated"] is True and body["lead"]["status"] == "CONVERTED"
    assert body["lead"]["convertedAt"] is not None
    (customer,) = rows(engine, "SELECT * FROM customers")
    assert str(customer["id"]) == body["customerId"]
    assert (customer["first_name"], customer["last_name"]) == ("Ada", "King Lovelace")
    assert (customer["source"], customer["status"], customer["customer_type"]) == (
        "LEAD_CONVERSION",
        "ACTIVE",
        "RETAILER",
    )
    assert customer["metadata"]["convertedFromLeadId"] == lead
    assert (customer["company_name"], customer["phone"]) == ("Engines Ltd", "+44 1")
    (note,) = rows(engine, "SELECT type, priority, data FROM crm_notifications")
    assert note["type"] == "LEAD_CONVERTED" and note["priority"] == "HIGH"
    assert note["data"]["customerId"] == body["customerId"] and note["data"]["leadId"] == lead
    audit = rows(engine, "SELECT action, field, from_value, to_value FROM lead_audit_entries")
    assert {(a["field"], a["from_value"], a["to_value"]) for a in audit} == {
        ("status", "QUALIFIED", "CONVERTED"),
        ("customer_id", None, body["customerId"]),
    }


def test_convert_links_the_customer_that_has_the_email(admin, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customers (id, email, source, customer_type, status, metadata) VALUES "
            "('00000000-0000-0000-0000-0000000000c1', 'ada@engines.example', 'IMPORT', "
            "'DISTRIBUTOR', 'PROSPECT', '{\"importBatch\": 7}')"
        )
    lead = add_lead(engine, email="ada@engines.example", status="QUALIFIED")
    r = admin.post(f"/api/admin/leads/{lead}/convert")
    assert r.status_code == 200, r.text
    assert r.json()["customerCreated"] is False
    assert r.json()["customerId"] == "00000000-0000-0000-0000-0000000000c1"
    (customer,) = rows(engine, "SELECT * FROM customers")
    assert (customer["source"], customer["customer_type"], customer["status"]) == (
        "IMPORT",
        "DISTRIBUTOR",
        "ACTIVE",
    )
    assert customer["metadata"]["importBatch"] == 7
    assert customer["metadata"]["convertedFromLeadId"] == lead
    (lead_row,) = rows(engine, "SELECT status, metadata FROM leads")
    assert lead_row["status"] == "CONVERTED"
    assert lead_row["metadata"]["customerId"] == "00000000-0000-0000-0000-0000000000c1"


@pytest.mark.parametrize("start", ["NEW", "CONTACTED", "REJECTED", "CONVERTED"])
def test_convert_from_a_status_that_cannot_convert_is_409_and_writes_nothing(admin, engine, start):
    lead = add_lead(engine, status=start)
    r = admin.post(f"/api/admin/leads/{lead}/convert")
    assert r.status_code == 409, r.text
    assert count(engine, "customers") == 0 and count(engine, "crm_notifications") == 0
    assert count(engine, "lead_audit_entries") == 0


def test_failed_conversion_rolls_back_every_write(admin, engine):
    lead = add_lead(engine, status="QUALIFIED")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION fail_note() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'outbox is down'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER fail_notes BEFORE INSERT ON crm_notifications "
            "FOR EACH ROW EXECUTE FUNCTION fail_note()"
        )
    try:
        assert admin.post(f"/api/admin/leads/{lead}/convert").status_code == 500
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER fail_notes ON crm_notifications")
            conn.exec_driver_sql("DROP FUNCTION fail_note()")
    assert count(engine, "customers") == 0 and count(engine, "lead_audit_entries") == 0
    assert rows(engine, "SELECT status FROM leads")[0]["status"] == "QUALIFIED"


def test_list_sorts_by_score_then_newest_and_pages_with_a_cursor(admin, engine):
    made = {}
    for i, score in enumerate([50, 80, 80, 30, 70]):
        made[(score, i)] = add_lead(
            engine, f"l{i}@x.io", score=score, created=T0 + timedelta(hours=i)
        )
    seen = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/admin/leads", params=params).json()
        seen += [(lead["leadScore"], lead["email"]) for lead in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [
        (80, "l2@x.io"),
        (80, "l1@x.io"),
        (70, "l4@x.io"),
        (50, "l0@x.io"),
        (30, "l3@x.io"),
    ]
    newest = admin.get("/api/admin/leads", params={"sort": "newest"}).json()["items"]
    assert [lead["email"] for lead in newest] == [
        "l4@x.io",
        "l3@x.io",
        "l2@x.io",
        "l1@x.io",
        "l0@x.io",
    ]


def test_list_filters(admin, engine):
    add_lead(engine, "a@x.io", status="NEW", score=90, type="QUOTE_REQUEST", assigned_to="rep@x.io")
    add_lead(engine, "b@x.io", status="CONTACTED", score=40, source="manual_import")
    add_lead(engine, "c@x.io", status="NEW", score=70, created=T0 + timedelta(days=2))

    def emails(**params):
        r = admin.get("/api/admin/leads", params=params)
        assert r.status_code == 200, r.text
        return sorted(lead["email"] for lead in r.json()["items"])

    assert emails(status="NEW") == ["a@x.io", "c@x.io"]
    assert emails(type="QUOTE_REQUEST") == ["a@x.io"]
    assert emails(source="manual_import") == ["b@x.io"]
    assert emails(minScore=70) == ["a@x.io", "c@x.io"]
    assert emails(assignedTo="rep@x.io") == ["a@x.io"]
    assert emails(email=" C@X.io") == ["c@x.io"]
    assert emails(createdFrom=(T0 + timedelta(days=1)).isoformat()) == ["c@x.io"]
    assert emails(createdTo=(T0 + timedelta(days=1)).isoformat()) == ["a@x.io", "b@x.io"]
    assert emails(status="NEW", minScore=80) == ["a@x.io"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"minScore": 101}, "minScore"),
        ({"status": "WON"}, "status"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
    ],
)
def test_bad_list_query_is_400_naming_the_parameter(admin, engine, params, field):
    r = admin.get("/api/admin/leads", params=params)
    assert r.status_code == 400 and r.json()["field"] == field, r.text


def test_counts_by_type_and_status(admin, engine):
    add_lead(engine, "a@x.io", type="QUOTE_REQUEST")
    add_lead(engine, "b@x.io", type="QUOTE_REQUEST", status="CONTACTED")
    add_lead(engine, "c@x.io", type="LEAD", status="CONVERTED")
    counts = admin.get("/api/admin/leads/counts").json()
    assert counts["total"] == 3
    assert counts["byType"] == {"LEAD": 1, "CONTACT_REQUEST": 0, "QUOTE_REQUEST": 2}
    assert counts["byStatus"] == {
        "NEW": 1,
        "CONTACTED": 1,
        "QUALIFIED": 0,
        "CONVERTED": 1,
        "REJECTED": 0,
    }


def test_get_one_lead(admin, engine):
    lead = add_lead(engine, status="CONTACTED")
    body = admin.get(f"/api/admin/leads/{lead}").json()
    assert body["id"] == lead and body["allowedStatuses"] == ["QUALIFIED", "REJECTED"]
