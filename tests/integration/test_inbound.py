"""POST /api/v1/inbound/{targetName}: a destination's signed lead changes (two-way sync)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from domain.destinations.inbound import forget_old_receipts
from domain.models import utcnow
from infra.db import Database, with_database
from infra.settings import Secret, Target
from tests.conftest import REDIS_URL, count, rows
from tests.e2e.harness import SECRET
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in
from tests.integration.test_leads_lifecycle import add_lead

OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 bytes, not the hub's
HUB = Target("BZION_HUB", "http://127.0.0.1:9/hub", (Secret(SECRET),))
ERP = Target("ERP", "http://127.0.0.1:9/erp", (Secret(OTHER_SECRET),))
KEY = Secret("k" * 40)


def signed(
    body: dict | bytes,
    secret: str = SECRET,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The raw body and the three Standard Webhooks headers, as a destination sends them."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, raw.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return raw, headers


def status_changed(lead_id: str, status: str) -> dict:
    return {"type": "lead.status_changed", "data": {"leadId": lead_id, "status": status}}


@pytest.fixture
def client(make_client, engine):
    return make_client(targets=(HUB, ERP), encryption_key=KEY)


def post(client, body, target="BZION_HUB", **sign):
    raw, headers = signed(body, **sign)
    return client.post(f"/api/v1/inbound/{target}", content=raw, headers=headers)


def audit(engine, lead_id):
    return rows(
        engine,
        "SELECT actor, action, field, from_value, to_value FROM lead_audit_entries "
        "WHERE lead_id = :id ORDER BY id",
        id=lead_id,
    )


def test_signed_status_change_moves_the_lead_with_the_target_as_actor(client, engine):
    lead = add_lead(engine, status="NEW")
    r = post(client, status_changed(lead, "CONTACTED"))
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is False and r.json()["lead"]["status"] == "CONTACTED"
    assert rows(engine, "SELECT status FROM leads WHERE id = :id", id=lead) == [
        {"status": "CONTACTED"}
    ]
    assert audit(engine, lead) == [
        {
            "actor": "target:BZION_HUB",
            "action": "updated",
            "field": "status",
            "from_value": "NEW",
            "to_value": "CONTACTED",
        }
    ]


def test_conversion_from_a_destination_notifies_the_others_but_not_the_sender(client, engine):
    lead = add_lead(engine, status="QUALIFIED")
    r = post(client, status_changed(lead, "CONVERTED"), target="ERP", secret=OTHER_SECRET)
    assert r.status_code == 200, r.text
    notes = rows(engine, "SELECT type, target_system FROM crm_notifications ORDER BY target_system")
    assert notes == [{"type": "LEAD_CONVERTED", "target_system": "BZION_HUB"}]
    assert {a["actor"] for a in audit(engine, lead)} == {"target:ERP"}


def test_assignment_by_email_notifies_new_lead_elsewhere_only(client, engine):
    older = add_lead(engine, email="buyer@acme.io", created=datetime(2026, 1, 1, tzinfo=UTC))
    newer = add_lead(engine, email="buyer@acme.io", created=datetime(2026, 2, 1, tzinfo=UTC))
    body = {"type": "lead.assigned", "data": {"email": "Buyer@ACME.io", "assignedTo": "rep@x.io"}}
    r = post(client, body)
    assert r.status_code == 200, r.text
    assert r.json()["lead"]["id"] == newer and r.json()["lead"]["assignedTo"] == "rep@x.io"
    assert rows(engine, "SELECT assigned_to FROM leads WHERE id = :id", id=older) == [
        {"assigned_to": None}
    ]
    (note,) = rows(engine, "SELECT type, target_system, data FROM crm_notifications")
    assert (note["type"], note["target_system"]) == ("NEW_LEAD", "ERP")
    assert note["data"]["event"] == "assigned" and note["data"]["createdBy"] == "target:BZION_HUB"
    assert audit(engine, newer)[0]["actor"] == "target:BZION_HUB"


def _refused(r, engine, lead, status="NEW"):
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "bad_signature"
    assert rows(engine, "SELECT status FROM leads WHERE id = :id", id=lead) == [{"status": status}]
    assert count(engine, "lead_audit_entries") == 0
    assert count(engine, "crm_inbound_events") == 0


def test_unsigned_is_refused(client, engine):
    lead = add_lead(engine)
    r = client.post("/api/v1/inbound/BZION_HUB", json=status_changed(lead, "CONTACTED"))
    _refused(r, engine, lead)


def test_another_destinations_secret_is_refused(client, engine):
    lead = add_lead(engine)
    _refused(post(client, status_changed(lead, "CONTACTED"), secret=OTHER_SECRET), engine, lead)


def test_a_body_changed_after_signing_is_refused(client, engine):
    lead = add_lead(engine)
    raw, headers = signed(status_changed(lead, "CONTACTED"))
    tampered = raw.replace(b"CONTACTED", b"REJECTED")
    _refused(
        client.post("/api/v1/inbound/BZION_HUB", content=tampered, headers=headers), engine, lead
    )


def test_a_timestamp_older_than_five_minutes_is_refused(client, engine):
    lead = add_lead(engine)
    stale = datetime.now(UTC) - timedelta(minutes=5, seconds=30)
    _refused(post(client, status_changed(lead, "CONTACTED"), at=stale), engine, lead)


def test_a_replayed_webhook_id_is_a_duplicate_and_changes_nothing(client, engine):
    lead = add_lead(engine)
    raw, headers = signed(status_changed(lead, "CONTACTED"))
    first = client.post("/api/v1/inbound/BZION_HUB", content=raw, headers=headers)
    assert first.status_code == 200, first.text
    # The same id again, even re-signed with a new time and a different change: ignored.
    again = post(client, status_changed(lead, "REJECTED"), msg_id=headers["webhook-id"])
    replay = client.post("/api/v1/inbound/BZION_HUB", content=raw, headers=headers)
    for r in (again, replay):
        assert r.status_code == 200, r.text
        assert r.json() == {"duplicate": True}
    assert rows(engine, "SELECT status FROM leads WHERE id = :id", id=lead) == [
        {"status": "CONTACTED"}
    ]
    assert len(audit(engine, lead)) == 1


def test_an_illegal_transition_is_a_409_writing_nothing(client, engine):
    lead = add_lead(engine, status="NEW")
    raw, headers = signed(status_changed(lead, "CONVERTED"))
    r = client.post("/api/v1/inbound/BZION_HUB", content=raw, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "illegal_transition" and r.json()["field"] == "status"
    assert rows(engine, "SELECT status FROM leads WHERE id = :id", id=lead) == [{"status": "NEW"}]
    assert count(engine, "lead_audit_entries") == 0
    assert count(engine, "crm_notifications") == 0
    assert count(engine, "crm_inbound_events") == 0  # refused: the sender may fix and retry


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "lead.deleted", "data": {}}, "type"),
        ({"data": {}}, "type"),
        ({"type": "lead.status_changed", "data": {"email": "a@b.io"}}, "data.status"),
        (
            {"type": "lead.status_changed", "data": {"email": "a@b.io", "status": "WON"}},
            "data.status",
        ),
        ({"type": "lead.status_changed", "data": {"status": "CONTACTED"}}, "data"),
        ({"type": "lead.assigned", "data": {"leadId": "nope", "assignedTo": "x"}}, "data.leadId"),
        ({"type": "lead.assigned", "data": {"email": "a@b.io"}}, "data.assignedTo"),
        (b"{not json", "body"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(client, engine, body, field):
    r = post(client, body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert count(engine, "crm_inbound_events") == 0


def test_unknown_lead_and_unknown_target_are_404(client, engine):
    r = post(client, status_changed(str(uuid.uuid4()), "CONTACTED"))
    assert r.status_code == 404 and r.json()["field"] == "data.leadId", r.text
    by_email = {"type": "lead.assigned", "data": {"email": "ghost@x.io", "assignedTo": "rep"}}
    r = post(client, by_email)
    assert r.status_code == 404 and r.json()["field"] == "data.email", r.text
    r = post(client, status_changed(str(uuid.uuid4()), "CONTACTED"), target="NOBODY")
    assert r.status_code == 404, r.text


def test_a_registry_destination_signs_and_both_secrets_verify_during_a_rotation(
    make_client, settings, engine
):
    make_admin(settings)
    admin = sign_in(
        make_client(targets=(HUB,), encryption_key=KEY, guard_redis_url=f"{REDIS_URL}/1"),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    )
    made = admin.post(
        "/api/admin/targets", json={"name": "PIPEDRIVE", "url": "http://127.0.0.1:9/pd"}
    )
    assert made.status_code == 201, made.text
    old = made.json()["secret"]
    lead = add_lead(engine, status="NEW")
    inbound = make_client(targets=(HUB,), encryption_key=KEY)  # no session, no CSRF token
    assert (
        post(inbound, status_changed(lead, "CONTACTED"), "PIPEDRIVE", secret=old).status_code == 200
    )

    rotated = admin.post("/api/admin/targets/PIPEDRIVE/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    r_new = post(inbound, status_changed(lead, "QUALIFIED"), "PIPEDRIVE", secret=new)
    r_old = post(inbound, status_changed(lead, "CONVERTED"), "PIPEDRIVE", secret=old)
    assert (r_new.status_code, r_old.status_code) == (200, 200), (r_new.text, r_old.text)
    assert [a["to_value"] for a in audit(engine, lead) if a["field"] == "status"] == [
        "CONTACTED",
        "QUALIFIED",
        "CONVERTED",
    ]
    assert {a["actor"] for a in audit(engine, lead)} == {"target:PIPEDRIVE"}
    # LEAD_CONVERTED went to the env hub, not back to PIPEDRIVE.
    notes = rows(engine, "SELECT type, target_system FROM crm_notifications")
    assert notes == [{"type": "LEAD_CONVERTED", "target_system": "BZION_HUB"}]

    # Once the overlap is over, the old secret no longer verifies.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE crm_targets SET secret_previous_expires_at = now() - interval '1 second'")
        )
    second = add_lead(engine, email="two@x.io")
    r = post(inbound, status_changed(second, "CONTACTED"), "PIPEDRIVE", secret=old)
    assert r.status_code == 401, r.text
    assert (
        post(inbound, status_changed(second, "CONTACTED"), "PIPEDRIVE", secret=new).status_code
        == 200
    )


def test_retention_forgets_webhook_ids_older_than_a_day_only(client, engine, settings):
    lead = add_lead(engine)
    assert post(client, status_changed(lead, "CONTACTED")).status_code == 200
    assert post(client, status_changed(lead, "QUALIFIED")).status_code == 200
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE crm_inbound_events SET received_at = now() - interval '25 hours' "
                "WHERE webhook_id = (SELECT min(webhook_id) FROM crm_inbound_events)"
            )
        )
    kept = rows(engine, "SELECT max(webhook_id) AS id FROM crm_inbound_events")[0]["id"]

    async def go(db: Database) -> int:
        async with db.transaction() as conn:
            return await forget_old_receipts(conn, utcnow())

    assert with_database(settings, go) == 1
    assert rows(engine, "SELECT webhook_id FROM crm_inbound_events") == [{"webhook_id": kept}]
