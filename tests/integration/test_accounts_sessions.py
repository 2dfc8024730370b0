"""Sessions the server issued, a new id at sign-in and role change, CSRF tokens bound to the
session, and sign-in only from the body types a page of ours sends."""

from __future__ import annotations

import json

from litestar.testing import TestClient

from tests.conftest import count
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in

SESSION = "crm_session"


def set_cookie(response, name: str) -> str | None:
    """The value a response sets for cookie `name`, or None when it sets none."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key == name:
            return rest.split(";", 1)[0].strip('"')
    return None


def issued_anonymous_id(client: TestClient) -> str:
    """What an attacker gets by opening the sign-in page: a real, server-issued session id."""
    r = client.get("/admin/login")
    assert r.status_code == 200
    session_id = set_cookie(r, SESSION)
    assert session_id and session_id != "null"
    return session_id


def browser(client: TestClient, **cookies: str) -> TestClient:
    """The same server seen from a browser holding only these cookies."""
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    return client


def with_session(client: TestClient, session_id: str) -> TestClient:
    return browser(client, **{SESSION: session_id})


def test_sign_in_moves_a_planted_session_to_a_new_id(make_client, settings, engine):
    make_admin(settings)
    client = make_client()
    planted = issued_anonymous_id(client)
    victim = with_session(client, planted)
    login = victim.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    fresh = set_cookie(login, SESSION)
    assert fresh and fresh not in (planted, "null")
    assert with_session(client, fresh).get("/api/auth/me").json()["email"] == ADMIN_EMAIL
    # The planter's copy of the id opens nothing.
    assert with_session(client, planted).get("/api/auth/me").status_code == 401


def test_a_session_id_the_server_never_issued_is_not_adopted(make_client, settings, engine):
    make_admin(settings)
    client = make_client()
    for chosen in ("a" * 64, "attacker-chosen-id"):
        with_session(client, chosen)
        anonymous = client.get("/admin/login")
        assert set_cookie(anonymous, SESSION) not in (chosen, None)
        with_session(client, chosen)
        login = client.post(
            "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert set_cookie(login, SESSION) != chosen
        assert with_session(client, chosen).get("/api/auth/me").status_code == 401


def test_an_anonymous_csrf_token_is_refused_on_an_admin_session(make_client, settings, engine):
    make_admin(settings)
    client = make_client()
    anonymous = client.get("/admin/login")
    anonymous_token = set_cookie(anonymous, "csrftoken")
    assert anonymous_token
    login = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    admin_token = login.json()["csrfToken"]
    assert admin_token != anonymous_token
    admin_session = set_cookie(login, SESSION)
    assert admin_session
    # Token from before sign-in, sent as header and (planted) cookie alike: refused.
    browser(client, **{SESSION: admin_session, "csrftoken": anonymous_token})
    r = client.post(
        "/api/admin/leads", json={"email": "lead@x.io"}, headers={"x-csrftoken": anonymous_token}
    )
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    # Another session's token: refused too.
    someone_token = set_cookie(browser(client).get("/admin/login"), "csrftoken")
    assert someone_token
    browser(client, **{SESSION: admin_session, "csrftoken": someone_token})
    r = client.post(
        "/api/admin/leads", json={"email": "lead@x.io"}, headers={"x-csrftoken": someone_token}
    )
    assert r.status_code == 403
    assert count(engine, "leads") == 0
    browser(client, **{SESSION: admin_session, "csrftoken": admin_token})
    r = client.post(
        "/api/admin/leads", json={"email": "lead@x.io"}, headers={"x-csrftoken": admin_token}
    )
    assert r.status_code == 201, r.text


def test_sign_in_from_a_text_plain_body_is_refused(make_client, settings, engine):
    """What a cross-site <form enctype="text/plain"> can send without a preflight."""
    make_admin(settings)
    client = make_client()
    body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    r = client.post("/api/auth/login", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 415, r.text
    assert r.json()["field"] == "body"
    form = f"email={ADMIN_EMAIL}&password={ADMIN_PASSWORD}"
    r = client.post(
        "/admin/login", content=form, headers={"content-type": "text/plain"}, follow_redirects=False
    )
    assert r.status_code in (400, 403, 415), r.text
    assert client.get("/api/auth/me").status_code == 401


def test_a_role_change_moves_the_session_to_a_new_id(make_client, settings, engine):
    make_admin(settings)
    client = sign_in(make_client(), ADMIN_EMAIL, ADMIN_PASSWORD)
    before = client.cookies.get(SESSION)
    assert before
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET role = 'customer'")
    r = client.get("/api/auth/me")
    assert r.status_code == 200 and r.json()["role"] == "customer"
    after = set_cookie(r, SESSION)
    assert after and after not in (before, "null")
    assert with_session(client, after).get("/api/admin/crm-sync").status_code == 403
    assert with_session(client, before).get("/api/auth/me").status_code == 401
