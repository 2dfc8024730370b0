"""Password policy (blank and common passwords refused) and the per-account sign-in lock."""

from __future__ import annotations

import pytest
from litestar.testing import transport

from domain.accounts.passwords import WeakPassword, common_passwords
from domain.accounts.throttle import MAX_FAILURES, WINDOW
from domain.accounts.users import create_admin
from infra.db import Database, with_database
from tests.conftest import count
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin

WEAK = ["        ", "\t \u00a0 \t   ", "password123", "Qwertyuiop", "iloveyou1", " 12345678 "]


def test_the_common_password_list_is_the_shipped_top_ten_thousand():
    listed = common_passwords()
    assert len(listed) == 10_000
    assert {"123456", "password", "qwerty"} <= listed
    assert all(p == p.lower() for p in listed)


@pytest.mark.parametrize("password", WEAK)
def test_registration_refuses_a_blank_or_common_password(client, engine, password):
    r = client.post(
        "/api/auth/register",
        json={"name": "A B", "email": "weak@b.io", "password": password},
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "password"
    assert count(engine, "users") == 0


@pytest.mark.parametrize("password", WEAK)
def test_create_admin_refuses_a_blank_or_common_password(settings, engine, password):
    async def go(db: Database) -> None:
        async with db.transaction() as conn:
            await create_admin(conn, "weak@crm.example", password)

    with pytest.raises(WeakPassword) as refused:
        with_database(settings, go)
    assert refused.value.field == "password"
    assert count(engine, "users") == 0


@pytest.fixture
def from_address(monkeypatch):
    """Requests carry the client address named in X-Forwarded-For, as uvicorn sets it from a
    trusted proxy's header (the test client otherwise sends every request from one address)."""
    parse = transport.TestClientTransport.parse_request

    def parse_with_address(self, request):
        scope = parse(self, request)
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            scope["client"] = (forwarded, 50000)
        return scope

    monkeypatch.setattr(transport.TestClientTransport, "parse_request", parse_with_address)


def login(client, password: str, address: str, email: str = ADMIN_EMAIL):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers={"x-forwarded-for": address},
    )


def test_failures_from_many_addresses_lock_the_account(make_client, settings, engine, from_address):
    make_admin(settings)
    make_admin(settings, "other@crm.example")
    client = make_client()
    for i in range(MAX_FAILURES):
        assert login(client, f"guess-{i}", f"203.0.113.{i + 1}").status_code == 401
    # A new address, the right password: the account waits for the window to end.
    locked = login(client, ADMIN_PASSWORD, "198.51.100.7")
    assert locked.status_code == 429, locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= WINDOW.total_seconds()
    # Other accounts are not affected.
    assert login(client, ADMIN_PASSWORD, "198.51.100.7", "other@crm.example").status_code == 200


def test_a_successful_sign_in_clears_the_failure_count(make_client, settings, engine, from_address):
    make_admin(settings)
    client = make_client()
    for i in range(MAX_FAILURES - 1):
        assert login(client, f"guess-{i}", f"203.0.113.{i + 1}").status_code == 401
    assert login(client, ADMIN_PASSWORD, "198.51.100.7").status_code == 200
    for i in range(MAX_FAILURES - 1):
        assert login(client, f"guess-{i}", f"192.0.2.{i + 1}").status_code == 401
    assert login(client, ADMIN_PASSWORD, "198.51.100.8").status_code == 200
