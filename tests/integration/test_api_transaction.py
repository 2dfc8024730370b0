"""The API's one transaction boundary (api/transaction.py): commit or roll back, then wake once.

The dispatcher's waker on app.state is replaced by a recorder: what is asserted is whether and
how often the boundary calls it, against the real database.
"""

from __future__ import annotations

import pytest
from litestar import post
from litestar.datastructures import State
from litestar.testing import TestClient

from api.app import create_app
from api.transaction import WAKER, Conn
from domain.errors import IllegalTransition
from domain.leads.lifecycle import CreateLead, create_lead
from infra.settings import Settings
from tests.conftest import count
from tests.integration.admin_support import admin_client

FORM = {"formType": "contact_us", "email": "buyer@company.com", "name": "John Smith"}


class Wakes(list[int]):
    """Stands in for api.wakeup.Waker: counts the wake-ups instead of publishing them."""

    def __call__(self) -> None:
        self.append(1)

    def close(self) -> None:
        pass


def record_wakes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Wakes:
    wakes = Wakes()
    monkeypatch.setitem(client.app.state, WAKER, wakes)
    return wakes


@post("/test/create-lead-then-refuse")
async def create_lead_then_refuse(state: State, conn: Conn) -> None:
    """A use case that writes a lead and its outbox row, then fails."""
    await create_lead(conn, CreateLead(email="ghost@x.io"), "tester", state.settings.routes)
    raise IllegalTransition("refused after writing")


def test_a_lead_created_by_an_admin_wakes_the_dispatcher_once_after_commit(
    make_client, settings, engine, monkeypatch
):
    admin = admin_client(make_client, settings)
    wakes = record_wakes(admin, monkeypatch)
    r = admin.post("/api/admin/leads", json={"email": "jane@xyz.example"})
    assert r.status_code == 201, r.text
    assert count(engine, "crm_notifications") == 1
    assert wakes == [1]
    assert admin.get("/api/admin/leads/counts").status_code == 200
    assert wakes == [1]  # a read writes no notification: no wake-up


def test_a_failing_use_case_writes_nothing_and_does_not_wake(pg_url, engine, monkeypatch):
    app = create_app(Settings(database_url=pg_url, rate_limit=None))
    app.register(create_lead_then_refuse)
    with TestClient(app=app) as client:
        wakes = record_wakes(client, monkeypatch)
        r = client.post("/test/create-lead-then-refuse")
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == "refused after writing"
        for table in ("leads", "crm_notifications", "lead_audit_entries"):
            assert count(engine, table) == 0, table
        assert wakes == []
        # The rolled-back write leaves no mark on the pooled connection for the next request.
        assert (
            client.post("/api/newsletter-unsubscribe", json={"email": "a@b.io"}).status_code == 200
        )
        assert wakes == []


def test_the_form_fast_path_wakes_through_the_same_hook(client, engine, monkeypatch):
    wakes = record_wakes(client, monkeypatch)
    assert client.post("/api/forms/submit", json=FORM).status_code == 201
    assert wakes == [1]


def test_an_idempotent_replay_writes_nothing_and_does_not_wake(client, engine, monkeypatch):
    wakes = record_wakes(client, monkeypatch)
    headers = {"Idempotency-Key": "k-transaction-1"}
    first = client.post("/api/forms/submit", json=FORM, headers=headers)
    again = client.post("/api/forms/submit", json=FORM, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert count(engine, "crm_notifications") == 1
    assert wakes == [1]
