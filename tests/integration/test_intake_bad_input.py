"""Every bad input answers a 4xx JSON error naming the field, and writes nothing."""

import pytest

from tests.conftest import total_rows

LONG = "x" * 201
BAD = [
    ("/api/forms/submit", b'{"formType": "contact_us", "email": ', 400, "body"),
    ("/api/forms/submit", b"[1, 2]", 400, "body"),
    ("/api/forms/submit", {"formType": "contact_us", "email": "not-an-email"}, 400, "email"),
    ("/api/forms/submit", {"formType": "contact_us", "email": "a@b"}, 400, "email"),
    ("/api/forms/submit", {"formType": "contact_us"}, 400, "email"),
    ("/api/forms/submit", {"formType": "job_application", "email": "a@b.io"}, 400, "formType"),
    ("/api/forms/submit", {"formType": "contact_us", "email": "a@b.io", "name": LONG}, 400, "name"),
    (
        "/api/forms/submit",
        {"formType": "contact_us", "email": "a@b.io", "phone": "call me"},
        400,
        "phone",
    ),
    (
        "/api/forms/submit",
        {"formType": "contact_us", "email": "a@b.io", "message": "m" * 10_001},
        400,
        "message",
    ),
    (
        "/api/forms/submit",
        {"formType": "contact_us", "email": "a@b.io", "metadata": {str(i): i for i in range(51)}},
        400,
        "metadata",
    ),
    (
        "/api/forms/submit",
        {"formType": "contact_us", "email": "a@b.io", "metadata": "utm"},
        400,
        "metadata",
    ),
    ("/api/forms/submit", {"formType": "contact_us", "email": "x" * 250 + "@b.io"}, 400, "email"),
    ("/api/auth/register", {"name": "A", "email": "a@b.io"}, 400, "password"),
    (
        "/api/auth/register",
        {"name": "   ", "email": "a@b.io", "password": "long enough"},
        400,
        "name",
    ),
    ("/api/auth/register", {"name": "A", "email": "bad", "password": "long enough"}, 400, "email"),
    ("/api/newsletter-subscribe", {"email": ""}, 400, "email"),
    ("/api/newsletter-subscribe", {"email": 42}, 400, "email"),
    ("/api/newsletter-unsubscribe", {}, 400, "email"),
    ("/api/v1/rfq/submit", {"email": "a@b.io", "lines": []}, 400, "lines"),
    ("/api/v1/rfq/submit", {"email": "a@b.io"}, 400, "lines"),
    (
        "/api/v1/rfq/submit",
        {"email": "a@b.io", "lines": [{"sku": "X", "quantity": 0}]},
        400,
        "lines[0].quantity",
    ),
    (
        "/api/v1/rfq/submit",
        {"email": "a@b.io", "lines": [{"sku": "X", "quantity": -3}]},
        400,
        "lines[0].quantity",
    ),
    (
        "/api/v1/rfq/submit",
        {"email": "a@b.io", "lines": [{"sku": "X", "quantity": 1.5}]},
        400,
        "lines[0].quantity",
    ),
    (
        "/api/v1/rfq/submit",
        {"email": "a@b.io", "lines": [{"sku": "", "quantity": 1}]},
        400,
        "lines[0].sku",
    ),
    ("/api/v1/rfq/submit", {"email": "a@b.io", "lines": [{"quantity": 1}]}, 400, "lines[0].sku"),
]


@pytest.mark.parametrize(("path", "payload", "status", "field"), BAD)
def test_bad_input_is_rejected_naming_the_field(client, engine, path, payload, status, field):
    kwargs = (
        {"content": payload, "headers": {"Content-Type": "application/json"}}
        if isinstance(payload, bytes)
        else {"json": payload}
    )
    r = client.post(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    assert body["errors"] and body["detail"]
    assert set(total_rows(engine).values()) == {0}


def test_body_over_64_kib_is_413_and_writes_nothing(client, engine):
    payload = {"formType": "contact_us", "email": "a@b.io", "message": "m" * (65 * 1024)}
    r = client.post("/api/forms/submit", json=payload)
    assert r.status_code == 413
    assert r.json()["field"] == "body"
    assert set(total_rows(engine).values()) == {0}


@pytest.mark.parametrize("key", ["k" * 256, "has space"])
def test_malformed_idempotency_key_is_rejected(client, engine, key):
    r = client.post(
        "/api/forms/submit",
        json={"formType": "contact_us", "email": "a@b.io"},
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 400 and r.json()["field"] == "Idempotency-Key"
    assert set(total_rows(engine).values()) == {0}
