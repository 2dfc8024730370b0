"""Pull mode: a target system polls its unread notifications and acknowledges them."""

from infra.settings import Secret, Target
from tests.conftest import rows

KEY = "pull-key-123"


def _client(make_client):
    targets = (
        Target("BZION_HUB", api_key=Secret(KEY)),
        Target("PIPEDRIVE", api_key=Secret("other-key")),
    )
    return make_client(targets=targets)


def test_poll_lists_unread_by_priority_then_oldest_and_ack_marks_read(make_client, engine):
    c = _client(make_client)
    c.post("/api/newsletter-subscribe", json={"email": "n@b.io"})
    c.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    c.post("/api/v1/rfq/submit", json={"email": "q@b.io", "lines": [{"sku": "S", "quantity": 1}]})
    headers = {"Authorization": f"Bearer {KEY}"}
    r = c.get(
        "/api/v1/crm-notifications",
        params={"targetSystem": "BZION_HUB", "read": "false"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["priority"] for i in items] == ["HIGH", "NORMAL", "LOW"]
    assert {"id", "type", "targetSystem", "priority", "data", "read", "createdAt"} <= set(items[0])

    first = items[0]["id"]
    ack = c.post(f"/api/v1/crm-notifications/{first}/ack", headers={"X-API-Key": KEY})
    assert ack.status_code == 200 and ack.json()["read"] is True
    (row,) = rows(
        engine, "SELECT read, read_at, status FROM crm_notifications WHERE id = :i", i=first
    )
    assert row["read"] and row["read_at"] is not None and row["status"] == "DELIVERED"
    again = c.get(
        "/api/v1/crm-notifications",
        params={"targetSystem": "BZION_HUB", "limit": 10},
        headers=headers,
    )
    assert first not in [i["id"] for i in again.json()]
    assert (
        c.post(f"/api/v1/crm-notifications/{first}/ack", headers={"X-API-Key": KEY}).status_code
        == 200
    )


def test_pull_requires_the_targets_own_key(make_client, engine):
    c = _client(make_client)
    c.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    (note,) = rows(engine, "SELECT id FROM crm_notifications WHERE target_system = 'BZION_HUB'")
    params = {"targetSystem": "BZION_HUB"}
    assert c.get("/api/v1/crm-notifications", params=params).status_code == 401
    assert (
        c.get(
            "/api/v1/crm-notifications", params=params, headers={"X-API-Key": "wrong"}
        ).status_code
        == 401
    )
    assert (
        c.get(
            "/api/v1/crm-notifications", params=params, headers={"X-API-Key": "other-key"}
        ).status_code
        == 403
    )
    other = c.post(
        f"/api/v1/crm-notifications/{note['id']}/ack", headers={"X-API-Key": "other-key"}
    )
    assert other.status_code == 404
    assert {r["read"] for r in rows(engine, "SELECT read FROM crm_notifications")} == {False}
