"""Shared steps of the dashboard page tests: signed-in browsers-alike (form posts carry the
page's CSRF token, not the API header), sales accounts, and records made through the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from litestar.testing import TestClient

from infra.settings import Settings
from tests.integration.admin_support import customer_client, make_admin, sign_in

TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def sales_client(
    make_client: Callable[..., TestClient], settings: Settings, engine: Any
) -> TestClient:
    make_admin(settings, "sales@crm.example", "sales-pass-123")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET role = 'sales' WHERE email = 'sales@crm.example'")
    return sign_in(make_client(), "sales@crm.example", "sales-pass-123")


def customer_page_client(make_client: Callable[..., TestClient]) -> TestClient:
    return customer_client(make_client)


def token_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = TOKEN.search(page.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def submit(client: TestClient, path: str, token: str | None, **fields: Any) -> httpx.Response:
    """Post a dashboard form (no redirect followed); `token` None leaves the CSRF field out."""
    data = dict(fields)
    if token is not None:
        data["_csrf_token"] = token
    saved = client.headers.pop("x-csrftoken", None)
    try:
        return client.post(path, data=data, follow_redirects=False)
    finally:
        if saved is not None:
            client.headers["x-csrftoken"] = saved


def notice(page: str) -> str:
    match = re.search(r'data-flash="\w+">([^<]*)<', page)
    return match.group(1) if match else ""
