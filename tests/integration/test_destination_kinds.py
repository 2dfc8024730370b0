"""Connector kinds in the registry: options and sealed credentials, each kind's rules as 400s."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from domain.destinations.directory import load_snapshot
from infra.settings import Settings, async_url
from tests.conftest import rows
from tests.integration.test_destinations import KEY, registry_admin

AMQP = "amqp://crm:s3cret-pw@127.0.0.1:5672/crm"


@pytest.fixture
def admin(make_client, settings, engine):
    return registry_admin(make_client, settings)


def _create(admin, **body):
    return admin.post("/api/admin/targets", json={"name": "EVENTS", **body})


def test_a_rabbitmq_url_and_credentials_are_sealed_and_never_shown(admin, engine, pg_url):
    r = _create(
        admin,
        kind="rabbitmq",
        url=AMQP,
        options={"exchange": "crm.events"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "amqp://***@127.0.0.1:5672/crm"
    assert r.json()["options"] == {"exchange": "crm.events"}
    answers = [
        r,
        admin.get("/api/admin/targets"),
        admin.get("/api/admin/targets/EVENTS"),
        admin.patch("/api/admin/targets/EVENTS", json={"options": {"exchange": "other"}}),
    ]
    for a in answers:
        assert a.status_code in (200, 201), a.text
        assert "s3cret-pw" not in a.text and "crm:" not in a.text
    (row,) = rows(engine, "SELECT * FROM crm_targets")
    assert "s3cret-pw" not in json.dumps(row, default=str)  # sealed at rest
    assert row["credentials"].startswith("v1.")

    # The worker's directory opens it: the real URL, the options as patched.
    async def snapshot():
        eng = create_async_engine(async_url(pg_url))
        try:
            async with eng.connect() as conn:
                return (
                    await load_snapshot(conn, Settings(database_url=pg_url, encryption_key=KEY))
                )[0]
        finally:
            await eng.dispose()

    target = asyncio.run(snapshot()).target("EVENTS")
    assert target is not None and target.kind == "rabbitmq"
    assert target.url == AMQP and target.options == {"exchange": "other"}


def test_credentials_are_stored_sealed_and_reach_the_target_but_never_the_answer(
    admin, engine, pg_url
):
    r = _create(
        admin,
        kind="hubspot",
        url="https://127.0.0.1:9/hubspot",
        credentials={"accessToken": "pat-na1-TOPSECRET"},
    )
    assert r.status_code == 201, r.text
    patched = admin.patch(
        "/api/admin/targets/EVENTS", json={"credentials": {"accessToken": "pat-na1-NEWSECRET"}}
    )
    for a in (r, patched, admin.get("/api/admin/targets")):
        assert "SECRET" not in a.text and "credentials" not in a.json().__repr__().lower()
    (row,) = rows(engine, "SELECT * FROM crm_targets")
    assert "SECRET" not in json.dumps(row, default=str)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "rabbitmq", "url": "http://127.0.0.1:5672/"}, "url"),
        (
            {"kind": "rabbitmq", "url": AMQP, "options": {"exchange": "bad name!"}},
            "options.exchange",
        ),
        ({"kind": "rabbitmq", "url": AMQP, "options": {"exchang": "x"}}, "options.exchang"),
        (
            {"kind": "nats", "url": "nats://127.0.0.1:4222", "options": {"stream": "a.b"}},
            "options.stream",
        ),
        (
            {"kind": "nats", "url": "nats://127.0.0.1:4222", "options": {"subjectPrefix": "crm.>"}},
            "options.subjectPrefix",
        ),
        ({"kind": "webhook", "url": "amqp://127.0.0.1/"}, "url"),
        (
            {"kind": "salesforce", "url": "https://127.0.0.1:9/", "credentials": {"clientId": "x"}},
            "credentials.clientSecret",
        ),
        (
            {"kind": "hubspot", "url": "https://127.0.0.1:9/", "credentials": {"apiKey": "x"}},
            "credentials.apiKey",
        ),
        # A broker's host obeys the egress rule like a webhook's (only 127.0.0.1 allowed here).
        ({"kind": "rabbitmq", "url": "amqp://guest:guest@10.0.0.7:5672/"}, "url"),
    ],
)
def test_each_kind_refuses_what_it_cannot_use_with_a_400_naming_the_field(admin, body, field):
    r = _create(admin, **body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.text
    assert "guest:guest" not in r.text  # an egress refusal names the masked URL


def test_a_patch_is_validated_against_the_kind(admin):
    assert _create(admin, kind="nats", url="nats://127.0.0.1:4222").status_code == 201
    r = admin.patch("/api/admin/targets/EVENTS", json={"options": {"stream": "no spaces"}})
    assert r.status_code == 400 and r.json()["field"] == "options.stream", r.text
    r = admin.patch("/api/admin/targets/EVENTS", json={"url": "https://127.0.0.1/"})
    assert r.status_code == 400 and r.json()["field"] == "url", r.text


def test_a_mapping_naming_a_field_we_do_not_have_is_a_400(admin):
    body = {
        "name": "SFDC",
        "kind": "salesforce",
        "url": "http://127.0.0.1:9",
        "credentials": {"clientId": "id", "clientSecret": "s"},
        "options": {"mapping": {"favouriteColour": "Colour__c"}},
    }
    r = admin.post("/api/admin/targets", json=body)
    assert r.status_code == 400 and r.json()["field"] == "options.mapping", r.text
    body["options"] = {"mapping": {"companyName": "Company"}}
    assert admin.post("/api/admin/targets", json=body).status_code == 201


def test_slack_hears_high_notifications_unless_asked_otherwise(admin):
    hook = {"kind": "slack", "url": "http://127.0.0.1:9/services/T0/B0/x"}
    made = admin.post("/api/admin/targets", json={"name": "SLACK_SALES", **hook})
    assert made.status_code == 201 and made.json()["minPriority"] == "HIGH", made.text
    asked = {"name": "SLACK_ALL", **hook, "minPriority": "LOW"}
    made = admin.post("/api/admin/targets", json=asked)
    assert made.status_code == 201 and made.json()["minPriority"] == "LOW", made.text
