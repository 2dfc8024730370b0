"""The edge's input policy (api/inputs.py): hostile input is a 400 naming the field, never a 500.

NUL characters (which PostgreSQL refuses in text), deep nesting, bytes that are not UTF-8,
crafted keyset cursors and names that show nothing, signed in and not.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import total_rows
from tests.integration.admin_support import admin_client

FORM = {"formType": "contact_us", "email": "a@b.io"}
JSON = {"Content-Type": "application/json"}


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_names(r, field: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == field, body
    assert body["errors"][0]["field"] == field and body["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/forms/submit", {**FORM, "name": "\x00"}, "name"),
        ("/api/forms/submit", {**FORM, "email": "a\x00@b.io"}, "email"),
        ("/api/forms/submit", {**FORM, "metadata": {"utm": ["x", "y\x00"]}}, "metadata.utm[1]"),
        ("/api/forms/submit", {**FORM, "metadata": {"k\x00": 1}}, "metadata"),
        (
            "/api/v1/rfq/submit",
            {"email": "a@b.io", "lines": [{"sku": "A\x00", "quantity": 1}]},
            "lines[0].sku",
        ),
        (
            "/api/auth/register",
            {"name": "\x00", "email": "n@b.io", "password": "long enough"},
            "name",
        ),
        ("/api/auth/login", {"email": "boss\x00@crm.example", "password": "x"}, "email"),
    ],
)
def test_nul_in_a_json_string_is_a_400_naming_it(client, engine, path, payload, field):
    assert_names(client.post(path, json=payload), field)
    assert set(total_rows(engine).values()) == {0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"formType":"contact_us","email":"a@b.io","metadata":' + nested(500) + "}", "metadata"),
        ('{"formType":"contact_us","email":"a@b.io","metadata":' + nested(32) + "}", "metadata"),
        ("[" * 1000 + "]" * 1000, "body"),
        ('{"email":' + nested(1000) + "}", "email"),
    ],
)
def test_json_nested_past_the_limit_is_a_400_naming_the_member(client, engine, body, field):
    r = client.post("/api/forms/submit", content=body.encode(), headers=JSON)
    assert_names(r, field)
    assert "32 levels" in r.json()["detail"]
    assert len(r.content) < 1000  # a sentence, not a traceback
    assert set(total_rows(engine).values()) == {0}


def test_metadata_within_the_limit_is_stored(client, engine):
    body = '{"formType":"contact_us","email":"a@b.io","metadata":' + nested(31) + "}"
    assert client.post("/api/forms/submit", content=body.encode(), headers=JSON).status_code == 201


def test_bytes_that_are_not_utf8_are_a_400_naming_the_field(client, engine):
    body = b'{"formType":"contact_us","email":"a@b.io","message":"caf\xe9 \xff"}'
    assert_names(client.post("/api/forms/submit", content=body, headers=JSON), "message")
    body = b'{"email":"a@b.io","password":"long enough","name":"\xed\xa0\x80"}'
    assert_names(client.post("/api/auth/register", content=body, headers=JSON), "name")
    assert set(total_rows(engine).values()) == {0}


@pytest.mark.parametrize("name", ["\u00a0", "\u200b", " \u200b\u00a0\ufeff ", "\u3000"])
@pytest.mark.parametrize("path", ["/api/auth/register", "/api/forms/submit"])
def test_a_name_that_shows_nothing_is_a_400(client, engine, path, name):
    payload = {"email": "n@b.io", "password": "long enough", "formType": "contact_us"}
    assert_names(client.post(path, json={**payload, "name": name}), "name")
    assert set(total_rows(engine).values()) == {0}


def test_a_name_is_trimmed_of_invisible_characters(client):
    payload = {"name": "\u200bAda\u00a0", "email": "ada@b.io", "password": "long enough"}
    r = client.post("/api/auth/register", json=payload)
    assert r.status_code == 201 and r.json()["user"]["name"] == "Ada", r.text


@pytest.fixture
def admin(make_client, settings, engine):  # engine: a clean database per test
    return admin_client(make_client, settings)


@pytest.mark.parametrize(
    "url",
    [
        "/api/admin/leads?source=%00",
        "/api/admin/leads?assignedTo=x%00",
        "/api/admin/leads?email=%00a@b.io",
        "/api/admin/crm-notifications?targetSystem=%00",
        "/api/v1/crm-notifications?targetSystem=%00",
        "/admin/crm-sync?assignedTo=%00",
    ],
)
def test_nul_in_a_query_parameter_is_a_400_naming_it(admin, url):
    field = url.split("?")[1].split("=")[0]
    assert_names(admin.get(url), field)


def test_nul_in_a_static_path_is_a_400(client):
    assert_names(client.get("/admin/static/admin.css%00.txt"), "path")


def test_nul_in_an_url_encoded_form_is_a_400_naming_the_field(client):
    client.get("/admin/login")  # the dashboard's sign-in form needs its CSRF token
    token = client.cookies.get("csrftoken")
    r = client.post(
        "/admin/login",
        data={"email": "boss\x00@crm.example", "password": "x", "_csrf_token": token},
    )
    assert_names(r, "email")


def test_nul_in_assigned_to_on_create_and_patch_is_a_400(admin, engine):
    assert_names(
        admin.post("/api/admin/leads", json={"email": "l@b.io", "assignedTo": "\x00"}), "assignedTo"
    )
    lead = admin.post("/api/admin/leads", json={"email": "l@b.io"}).json()
    r = admin.patch(f"/api/admin/leads/{lead['id']}", json={"assignedTo": "a\x00"})
    assert_names(r, "assignedTo")


@pytest.mark.parametrize(
    "raw",
    [
        b'["leads:score",[Infinity,"2020-01-01T00:00:00+00:00","8b4f6c0e-7b8e-4c5e-9a55-2a4b6e0b7a10"]]',
        b'["leads:score",[100000000000000000000000,"2020-01-01T00:00:00+00:00",'
        b'"8b4f6c0e-7b8e-4c5e-9a55-2a4b6e0b7a10"]]',
        b'["leads:score",[1,"2020-01-01T00:00:00+00:00",5]]',
        b'["leads:score",[1.5,[],{}]]',
        b'["leads:score",[1,"2020-01-01\\u0000","x"]]',
        b"[" * 400 + b"]" * 400,
        b"\xff\xfe",
        json.dumps(["leads:score", "not a list"]).encode(),
    ],
)
def test_a_crafted_cursor_is_a_400_on_cursor(admin, raw):
    assert_names(admin.get("/api/admin/leads", params={"cursor": cursor(raw)}), "cursor")
