"""Admin-only dashboard pages: Destinations (health, test, disable/enable, rotate secret shown
once, replay failed) and Custom fields (list, create, delete), through CSRF-protected forms."""

import re

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import count, rows
from tests.e2e.harness import Receiver
from tests.integration.page_support import notice, sales_client, submit, token_of
from tests.integration.test_destinations import NEW, registry_admin
from tests.integration.test_reporting_monitoring import add_notification

PAGE = "/admin/destinations"


@pytest.fixture
def admin(make_client, settings, engine):
    return registry_admin(make_client, settings)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_destinations_page_shows_each_destination_with_its_health(
    admin, make_client, settings, engine
):
    assert admin.post("/api/admin/targets", json=NEW).status_code == 201
    add_notification(engine, target="SALESFORCE")
    page = admin.get(PAGE)
    assert page.status_code == 200, page.text
    row = re.search(r'<tr data-destination="SALESFORCE">(.*?)</tr>', page.text, re.S).group(1)
    assert "webhook" in row and "data-source>api<" in row and 'data-enabled="true"' in row
    assert re.search(r"data-unread>1<", row)
    assert '<tr data-destination="BZION_HUB">' in page.text  # the env one, read-only
    env_row = re.search(r'<tr data-destination="BZION_HUB">(.*?)</tr>', page.text, re.S).group(1)
    assert "data-source>env<" in env_row and 'data-do="rotate"' not in env_row
    assert sales_client(make_client, settings, engine).get(PAGE).status_code == 403


def test_test_disable_enable_from_the_page(admin, receiver, engine):
    secret = admin.post("/api/admin/targets", json={**NEW, "url": receiver.url}).json()["secret"]
    token = token_of(admin, PAGE)
    assert submit(admin, f"{PAGE}/SALESFORCE/test", None).status_code == 403
    assert receiver.deliveries == []
    r = submit(admin, f"{PAGE}/SALESFORCE/test", token)
    assert (r.status_code, r.headers["location"]) == (303, PAGE)
    (d,) = receiver.deliveries
    Webhook(secret).verify(d.body, d.headers)
    assert re.fullmatch(
        r"Test PING to SALESFORCE: HTTP 200 in \d+ ms\.", notice(admin.get(PAGE).text)
    )

    assert submit(admin, f"{PAGE}/SALESFORCE/disable", token, reason="").status_code == 303
    assert "give a reason" in notice(admin.get(PAGE).text)
    assert (
        submit(admin, f"{PAGE}/SALESFORCE/disable", token, reason="maintenance").status_code == 303
    )
    (t,) = rows(
        engine, "SELECT enabled, disabled_reason FROM crm_targets WHERE name = 'SALESFORCE'"
    )
    assert (t["enabled"], t["disabled_reason"]) == (False, "maintenance")
    assert 'data-do="enable"' in admin.get(PAGE).text
    assert submit(admin, f"{PAGE}/SALESFORCE/enable", token).status_code == 303
    assert rows(engine, "SELECT enabled FROM crm_targets WHERE name = 'SALESFORCE'")[0]["enabled"]


def test_rotated_secret_shows_once_and_replay_requeues_failed_rows(admin, engine):
    old = admin.post("/api/admin/targets", json=NEW).json()["secret"]
    token = token_of(admin, PAGE)
    assert submit(admin, f"{PAGE}/SALESFORCE/rotate-secret", None).status_code == 403
    r = submit(admin, f"{PAGE}/SALESFORCE/rotate-secret", token)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    (new,) = re.findall(r"<div class=\"secret\" data-secret>(whsec_[^<]+)</div>", r.text)
    assert new != old
    again = admin.get(PAGE).text
    assert new not in again and "data-secret" not in again

    failed = add_notification(engine, target="SALESFORCE", status="FAILED")
    assert submit(admin, f"{PAGE}/SALESFORCE/replay", token).status_code == 303
    assert "1 failed notification(s) to SALESFORCE queued again" in notice(admin.get(PAGE).text)
    assert (
        rows(engine, "SELECT status FROM crm_notifications WHERE id = :i", i=failed)[0]["status"]
        == "PENDING"
    )
    missing = submit(admin, f"{PAGE}/NOPE/replay", token)
    assert (missing.status_code, missing.headers["location"]) == (303, PAGE)


def test_custom_fields_page_creates_and_deletes_fields(admin, make_client, settings, engine):
    page = "/admin/custom-fields"
    assert admin.get(page).status_code == 200
    assert sales_client(make_client, settings, engine).get(page).status_code == 403
    token = token_of(admin, page)
    form = {"entity": "lead", "key": "size", "label": "Size", "type": "select", "options": "S, M,L"}
    assert submit(admin, page, None, **form).status_code == 403
    assert count(engine, "crm_custom_fields") == 0
    assert submit(admin, page, token, **form, required="on").status_code == 303
    (f,) = rows(engine, "SELECT entity, key, type, options, required, id FROM crm_custom_fields")
    assert (f["entity"], f["key"], f["type"], f["options"], f["required"]) == (
        "lead",
        "size",
        "select",
        ["S", "M", "L"],
        True,
    )
    listed = admin.get(page).text
    assert '<tr data-field="lead.size">' in listed and "field size (select) created" in notice(
        listed
    )
    dup = submit(admin, page, token, **form)
    assert dup.status_code == 303 and "already exists" in notice(admin.get(page).text)
    bad = submit(admin, page, token, entity="lead", key="9bad", label="x", type="text")
    assert bad.status_code == 303 and count(engine, "crm_custom_fields") == 1
    assert submit(admin, f"{page}/{f['id']}/delete", token).status_code == 303
    assert count(engine, "crm_custom_fields") == 0
