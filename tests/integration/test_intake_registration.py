"""POST /api/auth/register: a User and a linked Customer; CRM never blocks signup."""

import logging

from tests.conftest import count, rows

USER = {
    "name": "Ann Bee",
    "email": " Ann@Bee.CO ",
    "password": "correct horse",
    "company": "Bee Ltd",
}


def test_register_creates_user_and_active_retailer_customer(client, engine):
    r = client.post("/api/auth/register", json=USER)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["email"] == "ann@bee.co" and body["user"]["role"] == "customer"
    assert "password" not in r.text and "correct horse" not in r.text

    (user,) = rows(engine, "SELECT * FROM users")
    assert user["email"] == "ann@bee.co" and user["role"] == "customer" and user["is_active"]
    assert user["password_hash"].startswith("$argon2")
    assert (user["first_name"], user["last_name"], user["company_name"]) == (
        "Ann",
        "Bee",
        "Bee Ltd",
    )

    (customer,) = rows(engine, "SELECT * FROM customers")
    assert str(customer["id"]) == body["customerId"] and body["customerLinked"] is False
    assert customer["external_id"] == str(user["id"])
    assert (customer["source"], customer["customer_type"], customer["status"]) == (
        "B2B_PLATFORM",
        "RETAILER",
        "ACTIVE",
    )
    assert customer["metadata"]["registeredVia"] == "b2b-website"
    assert "registrationDate" in customer["metadata"]

    (note,) = rows(engine, "SELECT type, data::text AS data FROM crm_notifications")
    assert note["type"] == "NEW_CUSTOMER"
    assert "correct horse" not in note["data"] and "argon2" not in note["data"]


def test_duplicate_email_is_409_and_writes_nothing(client, engine):
    assert client.post("/api/auth/register", json=USER).status_code == 201
    r = client.post("/api/auth/register", json={**USER, "email": "ANN@bee.co"})
    assert r.status_code == 409 and r.json()["field"] == "email"
    assert count(engine, "users") == 1 and count(engine, "customers") == 1
    assert count(engine, "crm_notifications") == 1


def test_existing_customer_is_linked_not_duplicated(client, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customers (id, email, source, customer_type, status, company_name) "
            "VALUES ('00000000-0000-0000-0000-000000000001', 'ann@bee.co', 'IMPORT', "
            "'DISTRIBUTOR', 'PROSPECT', 'Imported Co')"
        )
    r = client.post("/api/auth/register", json=USER)
    assert r.status_code == 201
    assert r.json()["customerId"] == "00000000-0000-0000-0000-000000000001"
    assert r.json()["customerLinked"] is True
    (customer,) = rows(engine, "SELECT * FROM customers")
    (user,) = rows(engine, "SELECT id FROM users")
    assert customer["external_id"] == str(user["id"])
    assert (customer["source"], customer["customer_type"]) == ("IMPORT", "DISTRIBUTOR")
    assert customer["status"] == "ACTIVE"


def test_customer_failure_does_not_block_signup(client, engine, caplog):
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION fail_customer() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'crm is down'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER fail_customers BEFORE INSERT ON customers "
            "FOR EACH ROW EXECUTE FUNCTION fail_customer()"
        )
    try:
        with caplog.at_level(logging.ERROR):
            r = client.post("/api/auth/register", json=USER)
        assert r.status_code == 201, r.text
        assert r.json()["customerId"] is None
        assert count(engine, "users") == 1
        assert count(engine, "customers") == 0
        assert count(engine, "crm_notifications") == 0  # rolled back with the customer
        assert "customer record for new user" in caplog.text
        assert "correct horse" not in caplog.text
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER fail_customers ON customers")
            conn.exec_driver_sql("DROP FUNCTION fail_customer()")


def test_short_password_is_rejected_naming_the_field(client, engine):
    r = client.post("/api/auth/register", json={**USER, "password": "short"})
    assert r.status_code == 400 and r.json()["field"] == "password"
    assert "short" not in r.json()["detail"]
    assert count(engine, "users") == 0
