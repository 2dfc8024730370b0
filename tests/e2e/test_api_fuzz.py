"""Fuzzing every route of the OpenAPI document on a real server, signed in as admin and not.

- Schemathesis: the public write endpoints under every default check (status codes, response
  schemas, headers), and no row written by a rejected request; every other route under
  no-5xx, content-type and response-schema conformance (401/403/404 are not in the
  document Litestar generates for them, so status-code conformance is left to the public run).
- The hostile families of issue 10, thrown at every operation the document lists: NUL in
  every query parameter and every body field, JSON nested 1,000 levels, bytes that are not
  UTF-8, numbers beyond any range, crafted cursors. Never a 5xx; a 4xx is the JSON error
  shape naming a field; signed in, a NUL is a 400 naming the very parameter or field.
A traceback anywhere in the server's log fails the module.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.serialization import encode_json
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
)

from api.app import create_app
from domain.accounts.passwords import common_passwords
from domain.errors import DomainError
from infra.settings import Settings
from tests.conftest import total_rows
from tests.e2e.harness import Proc, answers_200, free_port, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin

PUBLIC = r"^/api/(forms/submit|auth/register|newsletter-(un)?subscribe|v1/rfq/submit)$"
SIGN_OUT = "/api/auth/logout"  # would end the admin session the rest of the run uses


@pytest.fixture(scope="module")
def live_api(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": pg_url,
        "CRM_RATE_LIMIT": "off",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # no broker: API must not care
    }
    log = tmp_path_factory.mktemp("fuzz") / "api.log"
    proc = Proc(["api", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_200(f"{base}/health/live"), 60, "the API")
        yield base
    finally:
        proc.stop()
        text = log.read_text()
        at = text.find("Traceback")
        assert at < 0, text[max(0, at - 2000) : at + 6000]


@pytest.fixture(scope="module")
def sessions(live_api: str, pg_url: str) -> dict[str, requests.Session]:
    return {
        "anonymous": requests.Session(),
        "admin": requests.Session(),
        "customer": requests.Session(),
    }


# A customer's own endpoints refuse staff (403) before reading any input: there the signed-in
# customer is the one whose answers must name the field.
CUSTOMER_ONLY = "/api/v1/quotes"


def customer_signed_in(live_api: str, session: requests.Session) -> requests.Session:
    """A customer account made through the public sign-up, opened again if tables were emptied."""
    if session.get(f"{live_api}/api/auth/me").status_code == 200:
        return session
    account = {
        "email": f"fuzz-{uuid.uuid4().hex[:10]}@customer.example",
        "password": "Quill-7-Harbor",
    }
    made = session.post(f"{live_api}/api/auth/register", json={**account, "name": "Fuzz Customer"})
    assert made.status_code == 201, made.text
    r = session.post(f"{live_api}/api/auth/login", json=account)
    assert r.status_code == 200, r.text
    session.headers["x-csrftoken"] = r.json()["csrfToken"]
    return session


def signed_in(live_api: str, pg_url: str, session: requests.Session) -> requests.Session:
    """The admin session, opened again if a test truncated the tables under it."""
    if session.get(f"{live_api}/api/auth/me").status_code == 200:
        return session
    with contextlib.suppress(DomainError):  # already there: only the session was lost
        make_admin(Settings(database_url=pg_url))
    r = session.post(
        f"{live_api}/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert r.status_code == 200, r.text
    session.headers["x-csrftoken"] = r.json()["csrfToken"]
    return session


def assert_error_shape(response: Any, field: str | None = None) -> None:
    """No 5xx; a 4xx (JSON) is {status, error, detail, field, errors} naming a field."""
    assert response.status_code < 500, response.text[:2000]
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) >= {"status", "error", "detail", "field", "errors"}, body
    assert body["status"] == response.status_code and body["field"], body
    if field is not None and response.status_code == 400:
        assert body["field"] == field, body


# The schema the app serves at /schema/openapi.json, taken from the app object itself.
DOCUMENT = json.loads(encode_json(create_app(Settings(rate_limit=None)).openapi_schema.to_schema()))
# The input policy refuses NUL anywhere in a request, also in the free-form members JSON
# Schema cannot constrain (metadata, ignored extra fields): the generated "valid" data leaves
# NUL out, and the NUL family below throws it at every field and parameter instead.
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
public_schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).include(path_regex=PUBLIC)
every_schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path_regex=PUBLIC)


def _refused_by_a_runtime_rule(case: schemathesis.Case, response: Any) -> bool:
    """Refusals no static schema can state, so "valid data refused" does not apply to them:
    a common password (the list is data), and custom field keys (admins define them at run
    time; an undefined key is a 400 naming `customFields.<key>`). Every other check runs."""
    if getattr(response, "status_code", None) != 400:
        return False
    body = case.body if isinstance(case.body, dict) else {}
    password = body.get("password")
    if (
        case.path == "/api/auth/register"
        and isinstance(password, str)
        and (not password.strip() or password.strip().lower() in common_passwords())
    ):
        return True
    field = response.json().get("field") or ""
    return isinstance(body.get("customFields"), dict) and field.startswith("customFields.")


@public_schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_public_api_holds_under_fuzzing(case, live_api, engine):
    before = total_rows(engine)
    response = case.call(base_url=live_api)
    excluded = [positive_data_acceptance] if _refused_by_a_runtime_rule(case, response) else []
    case.validate_response(response, excluded_checks=excluded)
    assert_error_shape(response)
    if response.status_code >= 400:
        assert total_rows(engine) == before, f"{response.status_code} wrote rows"


@every_schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_route_holds_under_fuzzing_signed_in_and_not(case, live_api, pg_url, sessions):
    checks = [not_a_server_error, content_type_conformance, response_schema_conformance]
    for who, session in sessions.items():
        if who == "admin":
            if case.path == SIGN_OUT:
                continue
            session = signed_in(live_api, pg_url, session)
        if who == "customer":
            if case.path == SIGN_OUT:
                continue
            session = customer_signed_in(live_api, session)
        response = case.call(base_url=live_api, session=session)
        case.validate_response(response, checks=checks, headers=dict(session.headers))
        assert_error_shape(response)


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Values no parameter should choke on: beyond any integer column, not a number, cursors that
# decode to the wrong kind, the wrong types, Infinity, or nothing at all.
ODD_VALUES = [
    "9" * 40,
    "-1e400",
    "Infinity",
    _cursor(b'["leads:score",[Infinity,"2020-01-01T00:00:00+00:00","x"]]'),
    _cursor(b'["leads:score",[100000000000000000000000,"2020-01-01",1]]'),
    _cursor(b'["notifications",[[],{},1.5]]'),
    _cursor(b"[" * 300),
    "%ff%fe",
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        if "properties" in option or "$ref" in option:
            return _resolve(option)
    return schema


def hostile_requests() -> Iterator[tuple[str, str, str, dict[str, Any], str | None]]:
    """(case id, method, url path, requests kwargs, field a 400 must name) for every operation."""
    for template, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            path = template
            for p in operation.get("parameters", []):
                if p["in"] == "path":
                    path = path.replace("{" + p["name"] + "}", str(uuid.uuid4()))
            base = f"{method.upper()} {template}"
            nul_path = template.replace("{", "a%00").replace("}", "") if "{" in template else None
            yield f"{base} NUL in path", method, nul_path or template + "%00", {}, None
            for p in operation.get("parameters", []):
                if p["in"] != "query":
                    continue
                name = p["name"]
                yield f"{base} ?{name}=NUL", method, path, {"params": {name: "a\x00b"}}, name
                for i, odd in enumerate(ODD_VALUES):
                    yield f"{base} ?{name}=odd{i}", method, path, {"params": {name: odd}}, None
            body = operation.get("requestBody")
            if not body:
                continue
            schema = _resolve(body["content"]["application/json"]["schema"])
            for name in schema.get("properties", {}):
                key = json.dumps(name).encode()
                families: list[tuple[str, bytes, str | None]] = [
                    ("NUL", b"{" + key + b':"a\\u0000b"}', name),
                    ("NUL in a key", b"{" + key + b':{"k\\u0000":1}}', name),
                    ("deep", b"{" + key + b":" + b"[" * 1000 + b"]" * 1000 + b"}", name),
                    ("not UTF-8", b"{" + key + b':"caf\xe9\xff"}', name),
                    ("huge", b"{" + key + b":1" + b"0" * 400 + b"}", None),
                    ("1e400", b"{" + key + b":1e400}", None),
                ]
                for family, raw, field in families:
                    kwargs = {"data": raw, "headers": {"Content-Type": "application/json"}}
                    yield f"{base} {name} {family}", method, path, kwargs, field
            deep_body = b"[" * 1000 + b"]" * 1000
            yield (
                f"{base} deep body",
                method,
                path,
                {"data": deep_body, "headers": {"Content-Type": "application/json"}},
                "body",
            )


HOSTILE = list(hostile_requests())


def test_every_route_answers_hostile_families_with_a_4xx_naming_the_field(
    live_api, pg_url, sessions
):
    assert len({h[0].split(" ")[1] for h in HOSTILE}) == len(DOCUMENT["paths"])  # all covered
    # Both sign in first: the anonymous session's hostile sign-ins use up the login rate limit.
    signed_in(live_api, pg_url, sessions["admin"])
    customer_signed_in(live_api, sessions["customer"])
    for who, session in sessions.items():
        for case_id, method, path, kwargs, field in HOSTILE:
            # Signing out or in again would end the session under test; the anonymous session
            # throws the same families at both.
            if who != "anonymous" and path in (SIGN_OUT, "/api/auth/login"):
                continue
            # Who must name the field: the customer on a customer's own endpoint, else the admin.
            strict = who == ("customer" if path.startswith(CUSTOMER_ONLY) else "admin")
            r = session.request(method, f"{live_api}{path}", timeout=30, **kwargs)
            try:
                assert_error_shape(r, field if strict else None)
                if strict and field is not None and path != "/api/auth/login":
                    assert r.status_code == 400, r.text  # login may also answer its 429
            except AssertionError as exc:
                raise AssertionError(f"{who}: {case_id}: {exc}") from exc
