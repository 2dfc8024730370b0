"""/api/admin/crm-sync, /api/admin/monitoring and the notification actions, against data
whose figures are computed by hand."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.models import utcnow
from tests.conftest import rows
from tests.integration.admin_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    admin_client,
    make_admin,
    sign_in,
)
from tests.integration.test_leads_lifecycle import add_lead


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def add_notification(engine, status="PENDING", read=False, target="BZION_HUB", age=timedelta(0)):
    note_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO crm_notifications (id, type, target_system, priority, data, read, "
            "status, attempts, created_at, failed_at, last_error) VALUES (%(id)s, 'NEW_LEAD', "
            "%(target)s, 'NORMAL', '{\"email\": \"n@x.io\"}', %(read)s, %(status)s, 3, "
            "now() - %(age)s, %(failed_at)s, %(error)s)",
            {
                "id": note_id,
                "status": status,
                "read": read,
                "target": target,
                "age": age,
                "failed_at": datetime.now(UTC) if status == "FAILED" else None,
                "error": "HTTP 500" if status == "FAILED" else None,
            },
        )
    return str(note_id)


def add_form_and_subscriber(engine, n_forms=2, n_subs=3, n_unsub=1):
    with engine.begin() as conn:
        for i in range(n_forms):
            conn.exec_driver_sql(
                "INSERT INTO form_submissions (id, form_type, data, status) VALUES "
                "(%(id)s, 'contact_us', %(data)s, 'NEW')",
                {"id": uuid.uuid4(), "data": f'{{"email": "f{i}@x.io"}}'},
            )
        for i in range(n_subs + n_unsub):
            conn.exec_driver_sql(
                "INSERT INTO newsletter_subscribers (id, email, source, status) VALUES "
                "(%(id)s, %(email)s, 'B2B_PLATFORM', %(status)s)",
                {
                    "id": uuid.uuid4(),
                    "email": f"s{i}@x.io",
                    "status": "SUBSCRIBED" if i < n_subs else "UNSUBSCRIBED",
                },
            )


def test_crm_sync_stats_match_hand_computed_figures(admin, engine):
    for i, status in enumerate(["NEW", "CONVERTED", "CONVERTED", "QUALIFIED", "NEW", "REJECTED"]):
        add_lead(engine, f"l{i}@x.io", status=status)
    add_form_and_subscriber(engine)
    add_notification(engine)
    add_notification(engine, status="FAILED")
    add_notification(engine, status="DELIVERED", read=True)
    for method in ("GET", "POST"):
        before = utcnow()
        body = admin.request(method, "/api/admin/crm-sync").json()
        assert before <= datetime.fromisoformat(body["stats"].pop("asOf")) <= utcnow()
        assert body["stats"] == {
            "totalLeads": 6,
            "totalForms": 2,
            "totalSubscribers": 3,
            "unreadNotifications": 2,
            "conversionRate": 33.33,  # 2 / 6
            "convertedLeads": 2,
            "failedNotifications": 1,
        }
        assert len(body["leads"]) == 6 and len(body["forms"]) == 2
        assert len(body["subscribers"]) == 4 and len(body["notifications"]) == 3


def test_crm_sync_lists_are_paginated_each_with_its_cursor(admin, engine):
    for i in range(5):
        add_lead(
            engine, f"l{i}@x.io", created=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
        )
    add_form_and_subscriber(engine, n_forms=3, n_subs=0, n_unsub=0)
    first = admin.get("/api/admin/crm-sync", params={"limit": 2}).json()
    assert [lead["email"] for lead in first["leads"]] == ["l4@x.io", "l3@x.io"]
    assert len(first["forms"]) == 2 and first["nextCursors"]["subscribers"] is None
    second = admin.get(
        "/api/admin/crm-sync",
        params={
            "limit": 2,
            "leadsCursor": first["nextCursors"]["leads"],
            "formsCursor": first["nextCursors"]["forms"],
        },
    ).json()
    assert [lead["email"] for lead in second["leads"]] == ["l2@x.io", "l1@x.io"]
    assert len(second["forms"]) == 1 and second["nextCursors"]["forms"] is None
    bad = admin.get("/api/admin/crm-sync", params={"leadsCursor": first["nextCursors"]["forms"]})
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


def test_monitoring_figures_match_hand_computed_data(admin, engine):
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=30, second=0, microsecond=0)
    leads = [
        # (days ago, status, source)
        (0, "NEW", "web_form"),
        (0, "CONTACTED", "web_form"),
        (1, "QUALIFIED", "web_form"),
        (1, "CONVERTED", "web_form"),
        (3, "CONVERTED", "manual_import"),
        (3, "REJECTED", "manual_import"),
        (3, "NEW", "newsletter_signup"),
        (10, "NEW", "newsletter_signup"),  # outside the 7-day window
    ]
    for i, (ago, status, source) in enumerate(leads):
        add_lead(
            engine, f"m{i}@x.io", status=status, source=source, created=today - timedelta(days=ago)
        )
    add_notification(engine, target="BZION_HUB", age=timedelta(hours=2))
    add_notification(engine, target="BZION_HUB", age=timedelta(hours=3), status="FAILED")
    add_notification(engine, target="SALESFORCE", age=timedelta(hours=5))
    add_notification(engine, target="SALESFORCE", age=timedelta(minutes=10))  # too recent
    add_notification(engine, target="PIPEDRIVE", age=timedelta(hours=5), read=True)  # read

    body = admin.get("/api/admin/monitoring", params={"days": 7}).json()
    daily = {d["date"]: d["count"] for d in body["dailyNewLeads"]}
    day = lambda ago: (today - timedelta(days=ago)).date().isoformat()  # noqa: E731
    assert len(daily) == 7 and list(daily)[-1] == day(0)
    assert daily == {day(6): 0, day(5): 0, day(4): 0, day(3): 3, day(2): 0, day(1): 2, day(0): 2}
    assert body["statusDistribution"] == [
        {"status": "NEW", "count": 3},
        {"status": "CONVERTED", "count": 2},
        {"status": "CONTACTED", "count": 1},
        {"status": "QUALIFIED", "count": 1},
        {"status": "REJECTED", "count": 1},
    ]
    assert body["staleUnreadNotifications"] == {"BZION_HUB": 2, "SALESFORCE": 1}
    assert body["funnel"] == [
        {"stage": "total", "count": 8, "percentOfTotal": 100.0},
        {"stage": "contacted", "count": 4, "percentOfTotal": 50.0},
        {"stage": "qualified", "count": 3, "percentOfTotal": 37.5},
        {"stage": "converted", "count": 2, "percentOfTotal": 25.0},
    ]
    assert body["conversionBySource"] == [
        {"source": "web_form", "total": 4, "converted": 1, "conversionRate": 25.0},
        {"source": "manual_import", "total": 2, "converted": 1, "conversionRate": 50.0},
        {"source": "newsletter_signup", "total": 2, "converted": 0, "conversionRate": 0.0},
    ]


def test_monitoring_on_an_empty_database_shows_zeros(admin, engine):
    body = admin.get("/api/admin/monitoring", params={"days": 3}).json()
    assert [d["count"] for d in body["dailyNewLeads"]] == [0, 0, 0]
    assert body["funnel"][0] == {"stage": "total", "count": 0, "percentOfTotal": 0.0}
    assert admin.get("/api/admin/monitoring", params={"days": 0}).json()["field"] == "days"


def test_notifications_list_with_filters(admin, engine):
    failed = add_notification(engine, status="FAILED", target="SALESFORCE")
    add_notification(engine, status="PENDING")
    add_notification(engine, status="DELIVERED", read=True)

    def ids(**params):
        return [
            n["id"]
            for n in admin.get("/api/admin/crm-notifications", params=params).json()["items"]
        ]

    assert ids(status="FAILED") == [failed]
    assert ids(targetSystem="SALESFORCE") == [failed]
    assert len(ids(read="false")) == 2 and len(ids(read="true")) == 1
    assert len(ids()) == 3


def test_replay_a_failed_notification_requeues_it_with_a_fresh_budget(admin, engine):
    failed = add_notification(engine, status="FAILED")  # after 3 attempts
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE crm_notifications SET counted_attempts = attempts")
    r = admin.post(f"/api/admin/crm-notifications/{failed}/replay")
    assert r.status_code == 200, r.text
    # Attempt numbers carry on (the next one is 4); the budget starts over.
    assert r.json()["status"] == "PENDING" and r.json()["attempts"] == 3
    (row,) = rows(
        engine, "SELECT status, attempts, counted_attempts, failed_at FROM crm_notifications"
    )
    assert (row["status"], row["attempts"], row["counted_attempts"], row["failed_at"]) == (
        "PENDING",
        3,
        0,
        None,
    )


@pytest.mark.parametrize(("status", "read"), [("PENDING", False), ("DELIVERED", True)])
def test_replay_of_a_notification_that_did_not_fail_is_409(admin, engine, status, read):
    note = add_notification(engine, status=status, read=read)
    r = admin.post(f"/api/admin/crm-notifications/{note}/replay")
    assert r.status_code == 409 and status in r.json()["detail"]
    assert rows(engine, "SELECT status FROM crm_notifications")[0]["status"] == status


def test_replay_of_an_unknown_notification_is_404(admin, engine):
    assert admin.post(f"/api/admin/crm-notifications/{uuid.uuid4()}/replay").status_code == 404


def test_attempts_of_a_notification(admin, engine):
    note = add_notification(engine, status="FAILED")
    with engine.begin() as conn:
        for n, status in [(1, 500), (2, 503)]:
            conn.exec_driver_sql(
                "INSERT INTO crm_notification_attempts (notification_id, target_system, "
                "attempt_number, started_at, duration_ms, http_status, error) VALUES "
                "(%(id)s, 'BZION_HUB', %(n)s, now() - %(ago)s, 12.5, %(status)s, NULL)",
                {"id": note, "n": n, "status": status, "ago": timedelta(minutes=10 - n)},
            )
    attempts = admin.get(f"/api/admin/crm-notifications/{note}/attempts").json()
    assert [(a["attemptNumber"], a["httpStatus"]) for a in attempts] == [(1, 500), (2, 503)]
    assert admin.get(f"/api/admin/crm-notifications/{uuid.uuid4()}/attempts").status_code == 404


def test_monitoring_counts_stale_notifications_with_crm_stale_after(make_client, settings, engine):
    """The stale figure uses the alert's own threshold (CRM_STALE_AFTER), here 5 minutes."""
    make_admin(settings)
    c = sign_in(make_client(stale_after=timedelta(minutes=5)), ADMIN_EMAIL, ADMIN_PASSWORD)
    add_notification(engine, target="BZION_HUB", age=timedelta(minutes=10))  # stale at 5 min
    add_notification(engine, target="BZION_HUB", age=timedelta(minutes=1))  # fresh
    add_notification(engine, target="SALESFORCE", age=timedelta(minutes=30))  # stale at 5 min
    body = c.get("/api/admin/monitoring").json()
    assert body["staleUnreadNotifications"] == {"BZION_HUB": 1, "SALESFORCE": 1}
