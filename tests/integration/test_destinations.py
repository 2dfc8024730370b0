"""/api/admin/targets: the destinations registry (CRUD, env read-only, delete, rotation)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from infra.settings import Secret, Target
from tests.conftest import REDIS_URL, rows
from tests.e2e.harness import SECRET, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in
from tests.integration.test_reporting_monitoring import add_notification

KEY = Secret("k" * 40)
ENV_HUB = Target("BZION_HUB", "http://127.0.0.1:9/hook", (Secret(SECRET),))
NEW = {
    "name": "SALESFORCE",
    "kind": "webhook",
    "url": "http://127.0.0.1:9/sf",
    "events": ["QUOTE_REQUEST", "NEW_LEAD"],
    "minPriority": "HIGH",
    "rateLimitPerSecond": 5,
    "maxInFlight": 4,
}


def registry_admin(make_client, settings):
    """An admin on an app with CRM_SECRET_KEY set and one env target (BZION_HUB)."""
    make_admin(settings)
    client = make_client(encryption_key=KEY, targets=(ENV_HUB,), guard_redis_url=f"{REDIS_URL}/1")
    return sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def admin(make_client, settings, engine):
    return registry_admin(make_client, settings)


def test_create_answers_201_with_a_whsec_secret_shown_once(admin, engine):
    r = admin.post("/api/admin/targets", json=NEW)
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert body["name"] == "SALESFORCE" and body["source"] == "api"
    assert body["events"] == ["NEW_LEAD", "QUOTE_REQUEST"]
    assert (body["minPriority"], body["rateLimitPerSecond"], body["maxInFlight"]) == ("HIGH", 5, 4)
    assert body["enabled"] is True
    (row,) = rows(engine, "SELECT * FROM crm_targets")
    assert secret not in str(row)  # sealed at rest
    assert row["secret_current"].startswith("v1.")
    # Never again: not in the list, the one, a patch, enable/disable or rotate's other fields.
    answers = [
        admin.get("/api/admin/targets"),
        admin.get("/api/admin/targets/SALESFORCE"),
        admin.patch("/api/admin/targets/SALESFORCE", json={"maxInFlight": 8}),
        admin.post("/api/admin/targets/SALESFORCE/disable", json={"reason": "maintenance"}),
        admin.post("/api/admin/targets/SALESFORCE/enable"),
    ]
    for a in answers:
        assert a.status_code == 200, a.text
        assert secret not in a.text and "whsec_" not in a.text and 'secret"' not in a.text


def test_list_shows_env_targets_read_only_beside_the_registry(admin):
    admin.post("/api/admin/targets", json=NEW)
    listed = admin.get("/api/admin/targets").json()
    assert [(t["name"], t["source"]) for t in listed] == [
        ("BZION_HUB", "env"),
        ("SALESFORCE", "api"),
    ]
    assert "whsec_" not in str(listed)
    for method, path, body in [
        ("PATCH", "/api/admin/targets/BZION_HUB", {"maxInFlight": 2}),
        ("DELETE", "/api/admin/targets/BZION_HUB", None),
        ("POST", "/api/admin/targets/BZION_HUB/rotate-secret", None),
        ("POST", "/api/admin/targets/BZION_HUB/disable", {"reason": "x"}),
    ]:
        r = admin.request(method, path, json=body)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["error"] == "read_only_target"
    dup = admin.post("/api/admin/targets", json={**NEW, "name": "BZION_HUB"})
    assert dup.status_code == 409 and dup.json()["error"] == "duplicate_target"
    assert admin.post("/api/admin/targets", json=NEW).json()["error"] == "duplicate_target"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW, "name": "salesforce"}, "name"),
        ({**NEW, "name": "9LIVES"}, "name"),
        ({**NEW, "url": "ftp://x"}, "url"),
        ({**NEW, "events": ["NOPE"]}, "events[0]"),
        ({**NEW, "minPriority": "URGENT"}, "minPriority"),
        ({**NEW, "rateLimitPerSecond": 0}, "rateLimitPerSecond"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin, body, field):
    r = admin.post("/api/admin/targets", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_patch_changes_only_the_fields_given_and_null_clears(admin):
    admin.post("/api/admin/targets", json=NEW)
    r = admin.patch("/api/admin/targets/SALESFORCE", json={"events": None, "maxInFlight": 9})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["events"] is None and body["maxInFlight"] == 9
    assert body["minPriority"] == "HIGH" and body["url"] == NEW["url"]


def test_disable_keeps_the_reason_and_enable_clears_it(admin):
    admin.post("/api/admin/targets", json=NEW)
    off = admin.post("/api/admin/targets/SALESFORCE/disable", json={"reason": "receiver moved"})
    assert off.json()["enabled"] is False and off.json()["disabledReason"] == "receiver moved"
    assert off.json()["disabledAt"] is not None
    on = admin.post("/api/admin/targets/SALESFORCE/enable").json()
    assert on["enabled"] is True and on["disabledReason"] is None and on["disabledAt"] is None


def test_delete_refuses_while_unread_rows_wait_and_force_dead_letters_them(admin, engine):
    admin.post("/api/admin/targets", json=NEW)
    waiting = [add_notification(engine, target="SALESFORCE") for _ in range(2)]
    delivered = add_notification(engine, target="SALESFORCE", status="DELIVERED", read=True)
    r = admin.delete("/api/admin/targets/SALESFORCE")
    assert r.status_code == 409 and r.json()["error"] == "target_in_use"
    assert "2 unread" in r.json()["detail"]
    assert admin.get("/api/admin/targets/SALESFORCE").status_code == 200
    r = admin.delete("/api/admin/targets/SALESFORCE?force=true")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "SALESFORCE", "deadLettered": 2}
    assert admin.get("/api/admin/targets/SALESFORCE").status_code == 404
    states = {
        str(x["id"]): x["status"] for x in rows(engine, "SELECT id, status FROM crm_notifications")
    }
    assert states == {waiting[0]: "FAILED", waiting[1]: "FAILED", delivered: "DELIVERED"}


def test_delete_without_unread_rows_needs_no_force(admin):
    admin.post("/api/admin/targets", json=NEW)
    assert admin.delete("/api/admin/targets/SALESFORCE").json()["deadLettered"] == 0


def test_no_secret_key_no_secret_stored(make_client, settings, engine):
    make_admin(settings)
    admin = sign_in(make_client(), ADMIN_EMAIL, ADMIN_PASSWORD)  # CRM_SECRET_KEY unset
    r = admin.post("/api/admin/targets", json=NEW)
    assert r.status_code == 409 and r.json()["error"] == "secret_key_missing"
    assert "CRM_SECRET_KEY" in r.json()["detail"]
    assert rows(engine, "SELECT * FROM crm_targets") == []


def test_customers_and_anonymous_callers_are_refused(make_client, admin):
    assert make_client().get("/api/admin/targets").status_code == 401


def _routed(admin, engine, email: str, score: int) -> set[str]:
    r = admin.post("/api/admin/leads", json={"email": email, "leadScore": score})
    assert r.status_code == 201, r.text
    found = rows(
        engine,
        "SELECT target_system FROM crm_notifications WHERE data->>'email' = :e",
        e=email,
    )
    return {x["target_system"] for x in found}


def test_a_new_destination_is_routed_to_within_seconds_filtered_by_type_and_priority(admin, engine):
    assert admin.post("/api/admin/targets", json=NEW).status_code == 201
    started = time.monotonic()
    n = iter(range(1000))
    wait_for(
        lambda: _routed(admin, engine, f"high{next(n)}@x.io", 90) == {"BZION_HUB", "SALESFORCE"},
        5,
        "a HIGH NEW_LEAD routed to the new destination, no restart",
        interval=0.1,
    )
    assert time.monotonic() - started < 5
    # Below its minPriority (60: NORMAL): not routed there; a type outside its events neither.
    assert _routed(admin, engine, "normal@x.io", 60) == {"BZION_HUB"}
    assert (
        admin.post(
            "/api/forms/submit", json={"formType": "quote_request", "email": "q@x.io"}
        ).status_code
        == 201
    )
    found = rows(
        engine,
        "SELECT target_system, priority FROM crm_notifications WHERE type = 'NEW_FORM_SUBMISSION'",
    )
    assert found == [{"target_system": "BZION_HUB", "priority": "HIGH"}]


def test_a_disabled_destination_is_still_routed_to_its_rows_wait(admin, engine):
    made = admin.post("/api/admin/targets", json={**NEW, "minPriority": None})
    assert made.status_code == 201, made.text
    off = admin.post("/api/admin/targets/SALESFORCE/disable", json={"reason": "paused"})
    assert off.status_code == 200 and off.json()["enabled"] is False, off.text
    n = iter(range(1000))
    wait_for(
        lambda: "SALESFORCE" in _routed(admin, engine, f"d{next(n)}@x.io", 60),
        5,
        "rows written for the disabled destination",
        interval=0.1,
    )


def test_a_url_the_egress_rule_refuses_is_a_400_naming_url(admin):
    """Only 127.0.0.1 is allowed in the tests: every other local or private form is refused."""
    for url in ("http://127.0.0.2/x", "http://[::1]/x", "http://2130706434/x", "http://10.0.0.1/"):
        r = admin.post("/api/admin/targets", json={**NEW, "url": url})
        assert r.status_code == 400 and r.json()["field"] == "url", (url, r.text)
    made = admin.post("/api/admin/targets", json=NEW)
    assert made.status_code == 201, made.text
    r = admin.patch("/api/admin/targets/SALESFORCE", json={"url": "http://169.254.169.254/"})
    assert r.status_code == 400 and r.json()["field"] == "url", r.text


def test_a_destination_the_guardrails_disabled_shows_disabled_until_enabled(admin, engine):
    """A 410 or days of failures disable a destination in crm_target_state (the worker's
    table); the API shows it and enabling clears it, for env destinations too."""
    assert admin.post("/api/admin/targets", json=NEW).status_code == 201
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO crm_target_state (name, disabled_reason, disabled_at, updated_at) "
                "VALUES ('SALESFORCE', '410 Gone', now(), now()), "
                "('BZION_HUB', '410 Gone', now(), now())"
            )
        )
    listed = {t["name"]: t for t in admin.get("/api/admin/targets").json()}
    for name in ("SALESFORCE", "BZION_HUB"):
        assert (listed[name]["enabled"], listed[name]["disabledReason"]) == (False, "410 Gone")
        on = admin.post(f"/api/admin/targets/{name}/enable")
        assert on.status_code == 200 and on.json()["enabled"] is True, on.text
    assert rows(engine, "SELECT disabled_reason FROM crm_target_state") == [
        {"disabled_reason": None},
        {"disabled_reason": None},
    ]
