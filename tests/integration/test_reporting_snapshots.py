"""Stats snapshots (domain/reporting/snapshots.py): the same figures as the dashboard's cards."""

from __future__ import annotations

from domain.models import utcnow
from domain.reporting.snapshots import take_snapshot
from infra.db import Database, with_database
from tests.conftest import rows


def test_snapshot_records_the_current_figures(client, engine, settings):
    for form_type in ("quote_request", "contact_us"):
        r = client.post("/api/forms/submit", json={"formType": form_type, "email": "a@b.io"})
        assert r.status_code == 201, r.text
    taken_at = utcnow()

    async def snapshot(db: Database) -> None:
        async with db.transaction() as conn:
            await take_snapshot(conn, taken_at)

    with_database(settings, snapshot)

    (snap,) = rows(engine, "SELECT * FROM crm_stats_snapshots")
    leads = rows(engine, "SELECT lead_score FROM leads")
    notes = rows(engine, "SELECT target_system FROM crm_notifications")
    assert snap["taken_at"] == taken_at
    assert snap["total_forms"] == 2 and snap["total_leads"] == len(leads)
    assert snap["average_lead_score"] == round(sum(x["lead_score"] for x in leads) / len(leads), 2)
    assert snap["unread_notifications"] == len(notes) and snap["failed_notifications"] == 0
    assert snap["by_target"] == {notes[0]["target_system"]: {"unread": len(notes), "failed": 0}}
