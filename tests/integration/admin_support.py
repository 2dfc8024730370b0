"""Shared steps of the admin tests: staff accounts made through the domain, signed-in clients."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import TestClient

from domain.accounts.users import create_admin
from domain.errors import DuplicateEmail
from infra.db import Database, with_database
from infra.settings import Settings

ADMIN_EMAIL, ADMIN_PASSWORD = "boss@crm.example", "admin-pass-123"


def make_admin(
    settings: Settings, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> None:
    """Create the admin, or keep the one an earlier test of this run made (same credentials)."""

    async def go(db: Database) -> None:
        try:
            async with db.transaction() as conn:
                await create_admin(conn, email, password, "Bo Ss")
        except DuplicateEmail:
            pass

    with_database(settings, go)


def sign_in(client: TestClient, email: str, password: str) -> TestClient:
    r = client.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    client.headers["x-csrftoken"] = r.json()["csrfToken"]
    return client


def admin_client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    """A fresh app (own session and rate-limit stores) with a signed-in admin."""
    make_admin(settings)
    return sign_in(make_client(), ADMIN_EMAIL, ADMIN_PASSWORD)


def customer_client(make_client: Callable[..., TestClient]) -> TestClient:
    client = make_client()
    reg = client.post(
        "/api/auth/register",
        json={"name": "Cus Tomer", "email": "cus@tomer.example", "password": "customer-pw-1"},
    )
    assert reg.status_code == 201, reg.text
    return sign_in(client, "cus@tomer.example", "customer-pw-1")
