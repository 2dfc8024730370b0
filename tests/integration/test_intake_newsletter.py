"""Newsletter: subscriber + nurture lead + LOW notification; idempotent; re-subscribe."""

from tests.conftest import count, rows


def test_subscribe_creates_subscriber_nurture_lead_and_low_notification(client, engine):
    r = client.post("/api/newsletter-subscribe", json={"email": " News@Letter.IO"})
    assert r.status_code == 201, r.text
    (sub,) = rows(engine, "SELECT * FROM newsletter_subscribers")
    assert (sub["email"], sub["status"], sub["source"]) == (
        "news@letter.io",
        "SUBSCRIBED",
        "B2B_PLATFORM",
    )
    (lead,) = rows(engine, "SELECT * FROM leads")
    assert (lead["lead_score"], lead["source"], lead["type"]) == (30, "newsletter_signup", "LEAD")
    (note,) = rows(engine, "SELECT * FROM crm_notifications")
    assert (note["type"], note["priority"]) == ("NEWSLETTER_SIGNUP", "LOW")
    assert note["data"]["leadId"] == str(lead["id"])


def test_subscribing_twice_writes_nothing_new(client, engine):
    first = client.post("/api/newsletter-subscribe", json={"email": "n@l.io"}).json()
    second = client.post("/api/newsletter-subscribe", json={"email": "N@L.io"})
    assert second.status_code == 201
    assert second.json()["subscriberId"] == first["subscriberId"]
    assert second.json()["leadId"] == first["leadId"] and second.json()["created"] is False
    assert count(engine, "newsletter_subscribers") == 1
    assert count(engine, "leads") == 1
    assert count(engine, "crm_notifications") == 1


def test_unsubscribe_then_subscribe_again(client, engine):
    client.post("/api/newsletter-subscribe", json={"email": "n@l.io"})
    r = client.post("/api/newsletter-unsubscribe", json={"email": "n@l.io"})
    assert r.status_code == 200 and r.json()["status"] == "UNSUBSCRIBED"
    (sub,) = rows(engine, "SELECT status, unsubscribed_at FROM newsletter_subscribers")
    assert sub["status"] == "UNSUBSCRIBED" and sub["unsubscribed_at"] is not None

    r = client.post("/api/newsletter-subscribe", json={"email": "n@l.io"})
    assert r.status_code == 201 and r.json()["created"] is True
    (sub,) = rows(engine, "SELECT status, unsubscribed_at FROM newsletter_subscribers")
    assert sub["status"] == "SUBSCRIBED" and sub["unsubscribed_at"] is None
    assert count(engine, "leads") == 1  # the nurture lead is not duplicated
    notes = rows(engine, "SELECT data FROM crm_notifications ORDER BY created_at")
    assert [n["data"]["resubscribed"] for n in notes] == [False, True]


def test_unsubscribing_an_unknown_address_answers_alike_and_writes_nothing(client, engine):
    r = client.post("/api/newsletter-unsubscribe", json={"email": "who@l.io"})
    assert r.status_code == 200
    assert count(engine, "newsletter_subscribers") == 0
