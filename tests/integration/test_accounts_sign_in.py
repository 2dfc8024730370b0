"""Sign-in, roles, CSRF and the login rate limit on the admin side."""

import pytest

from tests.conftest import count
from tests.integration.admin_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    admin_client,
    customer_client,
    make_admin,
)

ADMIN_ROUTES = [
    ("GET", "/api/admin/crm-sync"),
    ("POST", "/api/admin/crm-sync"),
    ("GET", "/api/admin/leads"),
    ("GET", "/api/admin/leads/counts"),
    ("POST", "/api/admin/leads"),
    ("GET", "/api/admin/monitoring"),
    ("GET", "/api/admin/crm-notifications"),
    ("POST", "/api/admin/crm-notifications/00000000-0000-0000-0000-000000000001/replay"),
    ("GET", "/admin/crm-sync"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_answer_401_without_a_session(make_client, engine, method, path):
    r = make_client().request(method, path, json={"email": "x@y.io"})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_answer_403_to_a_customer(make_client, engine, method, path):
    client = customer_client(make_client)
    r = client.request(method, path, json={"email": "x@y.io"})
    assert r.status_code == 403, r.text
    assert count(engine, "leads") == 0


def test_admin_signs_in_and_sees_who_they_are(make_client, settings, engine):
    client = admin_client(make_client, settings)
    me = client.get("/api/auth/me").json()
    assert me["email"] == ADMIN_EMAIL and me["role"] == "admin"
    assert "password" not in str(me)
    assert client.get("/api/admin/crm-sync").status_code == 200


def test_wrong_password_or_unknown_email_is_401_and_opens_no_session(make_client, settings, engine):
    make_admin(settings)
    client = make_client()
    for email, password in [(ADMIN_EMAIL, "wrong-password"), ("nobody@x.io", ADMIN_PASSWORD)]:
        r = client.post("/api/auth/login", json={"email": email, "password": password})
        assert r.status_code == 401 and r.json()["detail"] == "wrong email or password"
    assert client.get("/api/admin/crm-sync").status_code == 401


def test_logout_closes_the_session(make_client, settings, engine):
    client = admin_client(make_client, settings)
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/admin/crm-sync").status_code == 401


def test_change_without_csrf_token_is_403_and_writes_nothing(make_client, settings, engine):
    client = admin_client(make_client, settings)
    token = client.headers.pop("x-csrftoken")
    r = client.post("/api/admin/leads", json={"email": "lead@x.io"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post(
        "/api/admin/leads",
        json={"email": "lead@x.io"},
        headers={"x-csrftoken": "forged" + token[6:]},
    )
    assert r.status_code == 403
    assert count(engine, "leads") == 0
    r = client.post("/api/admin/leads", json={"email": "lead@x.io"}, headers={"x-csrftoken": token})
    assert r.status_code == 201, r.text
    assert count(engine, "leads") == 1


def test_login_is_rate_limited_against_password_guessing(make_client, settings, engine):
    make_admin(settings)
    client = make_client()
    # One address trying many accounts (the per-account lock is tested on its own).
    answers = [
        client.post(
            "/api/auth/login", json={"email": f"user{i}@crm.example", "password": "a-guess"}
        ).status_code
        for i in range(12)
    ]
    assert answers[:10] == [401] * 10
    assert answers[10:] == [429, 429]
    # Even the right password waits for the window to pass.
    r = client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and "RateLimit-Reset" in r.headers


def test_bad_login_body_is_400_naming_the_field(make_client, engine):
    r = make_client().post("/api/auth/login", json={"email": "a@b.io"})
    assert r.status_code == 400 and r.json()["field"] == "password"


def test_deactivated_admin_is_signed_out(make_client, settings, engine):
    client = admin_client(make_client, settings)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET is_active = false")
    assert client.get("/api/admin/crm-sync").status_code == 401


@pytest.mark.parametrize("secure", [False, True])
def test_staff_cookies_carry_the_secure_flag_when_configured(make_client, settings, secure):
    email = f"cookie-{secure}@crm.example".lower()
    make_admin(settings, email)
    client = make_client(secure_cookies=secure)
    r = client.post("/api/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    assert set(cookies) >= {"crm_session", "csrftoken"}
    for name in ("crm_session", "csrftoken"):
        assert ("; secure" in cookies[name]) is secure, cookies[name]
