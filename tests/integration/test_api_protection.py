"""Abuse resistance: per-client rate limits (429 + Retry-After), CORS, security headers."""

from tests.conftest import count, rows
from tests.e2e.harness import free_port

FORM = {"formType": "contact_us", "email": "a@b.io"}


def test_public_posts_are_rate_limited_per_client_with_retry_after(make_client, engine):
    c = make_client(rate_limit=("minute", 3))
    assert [c.post("/api/forms/submit", json=FORM).status_code for _ in range(3)] == [201] * 3
    r = c.post("/api/forms/submit", json=FORM)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["error"] == "http_error"
    assert count(engine, "form_submissions") == 3
    assert c.get("/health/live").status_code == 200  # reads are not throttled


def test_answers_say_how_many_posts_are_left(make_client, engine):
    c = make_client(rate_limit=("hour", 5))
    answers = [c.post("/api/forms/submit", json=FORM) for _ in range(2)]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["4", "3"]
    assert all(a.headers["RateLimit-Limit"] == "5" for a in answers)
    assert 0 < int(answers[-1].headers["RateLimit-Reset"]) <= 3600
    bad = c.post("/api/forms/submit", json={**FORM, "email": "nope"})  # a 400 counts too
    assert bad.status_code == 400 and bad.headers["RateLimit-Remaining"] == "2"


def test_rate_limit_shares_redis_between_processes(make_client, engine):
    url = "redis://127.0.0.1:6379/1"
    a = make_client(rate_limit=("minute", 2), rate_limit_redis_url=url)
    b = make_client(rate_limit=("minute", 2), rate_limit_redis_url=url)
    import redis

    redis.Redis.from_url(url).flushdb()
    assert a.post("/api/forms/submit", json=FORM).status_code == 201
    assert b.post("/api/forms/submit", json=FORM).status_code == 201
    assert a.post("/api/forms/submit", json=FORM).status_code == 429


def test_rate_limit_survives_a_dead_redis(make_client, engine):
    c = make_client(
        rate_limit=("minute", 2), rate_limit_redis_url=f"redis://127.0.0.1:{free_port()}/1"
    )
    assert [c.post("/api/forms/submit", json=FORM).status_code for _ in range(3)] == [201, 201, 429]


def test_cors_allows_the_configured_frontend_only(make_client):
    c = make_client(cors_origins=("https://www.example.com",))
    ok = c.options(
        "/api/forms/submit",
        headers={"Origin": "https://www.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert ok.headers.get("access-control-allow-origin") == "https://www.example.com"
    other = c.options(
        "/api/forms/submit",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_security_headers_on_every_response(client):
    r = client.get("/health/live")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_honeypot_posts_get_a_plausible_201_and_only_a_spam_form_row(client, engine):
    from tests.conftest import total_rows

    bots = [
        ("/api/forms/submit", {**FORM, "website": "http://spam.example"}, "formSubmissionId"),
        ("/api/newsletter-subscribe", {"email": "bot@b.io", "website": "x"}, "subscriberId"),
        (
            "/api/v1/rfq/submit",
            {"email": "bot@b.io", "lines": [{"sku": "S", "quantity": 1}], "website": "x"},
            "quoteId",
        ),
    ]
    for path, body, key in bots:
        r = client.post(path, json=body)
        assert r.status_code == 201 and key in r.json()
    # The bot's form is recorded as SPAM (ops see bot volume); no lead, no notification, and
    # the other honeypots write nothing.
    written = total_rows(engine)
    assert written.pop("form_submissions") == 1
    assert set(written.values()) == {0}
    (spam,) = rows(engine, "SELECT id, status, form_type, data FROM form_submissions")
    assert spam["status"] == "SPAM" and spam["form_type"] == FORM["formType"]
    assert spam["data"]["website"] == "http://spam.example"
    # An empty honeypot is a person: accepted and written.
    assert client.post("/api/forms/submit", json={**FORM, "website": ""}).status_code == 201
    assert count(engine, "form_submissions", "status = 'NEW'") == 1
    assert count(engine, "leads") == 1
