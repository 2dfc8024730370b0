"""Idempotency-Key: a repeat returns the first response and writes nothing new."""

import concurrent.futures

import pytest

from tests.conftest import count, total_rows

CASES = [
    ("/api/forms/submit", {"formType": "quote_request", "email": "a@b.io"}),
    ("/api/auth/register", {"name": "A B", "email": "a@b.io", "password": "pw-123456"}),
    ("/api/newsletter-subscribe", {"email": "a@b.io"}),
    ("/api/v1/rfq/submit", {"email": "a@b.io", "lines": [{"sku": "X", "quantity": 2}]}),
]


@pytest.mark.parametrize(("path", "payload"), CASES)
def test_repeat_with_same_key_returns_first_response_and_writes_nothing(
    client, engine, path, payload
):
    headers = {"Idempotency-Key": "double-click-1"}
    first = client.post(path, json=payload, headers=headers)
    assert first.status_code == 201, first.text
    before = total_rows(engine)
    again = client.post(path, json=payload, headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert total_rows(engine) == before


def test_same_key_with_a_different_body_is_409(client, engine):
    headers = {"Idempotency-Key": "k-1"}
    assert (
        client.post(
            "/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"}, headers=headers
        ).status_code
        == 201
    )
    before = total_rows(engine)
    r = client.post(
        "/api/forms/submit", json={"formType": "contact_us", "email": "z@b.io"}, headers=headers
    )
    assert r.status_code == 409 and r.json()["field"] == "Idempotency-Key"
    assert total_rows(engine) == before


def test_keys_are_scoped_per_endpoint(client, engine):
    headers = {"Idempotency-Key": "shared"}
    assert (
        client.post(
            "/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"}, headers=headers
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/newsletter-subscribe", json={"email": "a@b.io"}, headers=headers
        ).status_code
        == 201
    )
    assert count(engine, "crm_notifications") == 2


def test_concurrent_repeats_write_once(client, engine):
    payload = {"formType": "contact_us", "email": "race@b.io"}
    headers = {"Idempotency-Key": "race-1"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda _: client.post("/api/forms/submit", json=payload, headers=headers), range(8)
            )
        )
    assert {r.status_code for r in results} == {201}
    assert len({r.content for r in results}) == 1
    assert count(engine, "form_submissions") == 1 and count(engine, "leads") == 1


def test_without_a_key_each_post_is_a_new_submission(client, engine):
    for _ in range(2):
        client.post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    assert count(engine, "form_submissions") == 2


def test_an_expired_key_is_used_afresh(client, engine):
    headers = {"Idempotency-Key": "old"}
    payload = {"formType": "contact_us", "email": "a@b.io"}
    client.post("/api/forms/submit", json=payload, headers=headers)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    r = client.post("/api/forms/submit", json=payload, headers=headers)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert count(engine, "form_submissions") == 2 and count(engine, "idempotency_keys") == 1


def test_a_repeat_of_a_registration_in_flight_gets_the_first_answer(client, engine):
    """The repeat arrives while the first is still hashing the password: it waits for the
    first answer instead of running the registration again (which answered 409)."""
    payload = {"name": "Race Er", "email": "race@b.io", "password": "s3cret-pass!"}
    headers = {"Idempotency-Key": "register-race-1"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda _: client.post("/api/auth/register", json=payload, headers=headers),
                range(4),
            )
        )
    assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
    assert len({r.content for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 3
    assert count(engine, "users") == 1 and count(engine, "customers") == 1
