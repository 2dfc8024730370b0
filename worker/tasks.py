"""Celery tasks, thin: each runs one domain function on this process's dispatcher.

Each is idempotent: running one twice does no harm. The per-process dispatcher lives in
worker/runtime.py, the graceful SIGTERM stop in worker/shutdown.py.
"""

from __future__ import annotations

from domain.customers.links import repair_links
from domain.models import utcnow
from domain.outbox.alerts import AlertEvent, check_stale
from domain.outbox.retention import purge_expired
from domain.reporting.snapshots import take_snapshot
from infra.logs import get_logger
from worker import runtime, shutdown
from worker.alerts import send_alert
from worker.celery_app import DISPATCH, REPAIR_LINKS, RETENTION, STALE, STATS, app, settings
from worker.metrics import summarized_dispatch

log = get_logger("crm.tasks")


@app.task(name=DISPATCH)
def dispatch() -> dict[str, int]:
    """Claim and deliver due notifications until none is due or the time budget is spent."""
    shutdown.install()
    d = runtime.dispatcher(settings)
    with summarized_dispatch(), shutdown.finishing_batches():
        report = d.run()
    return {"claimed": report.claimed, "delivered": report.delivered, "retried": report.retried}


@app.task(name=STATS)
def stats_snapshot() -> None:
    runtime.in_transaction(settings, lambda conn: take_snapshot(conn, utcnow()))


@app.task(name=STALE)
def stale_check() -> int:
    events: list[AlertEvent] = runtime.in_transaction(
        settings, lambda conn: check_stale(conn, settings.stale_after)
    )
    for event in events:
        send_alert(settings, event)
    return len(events)


@app.task(name=RETENTION)
def retention() -> dict[str, int]:
    """Delete read notifications and attempts older than CRM_RETENTION_DAYS, and old keys."""
    removed = runtime.in_transaction(
        settings,
        lambda conn: purge_expired(conn, utcnow(), settings.retention, settings.idempotency_ttl),
    )
    log.info("retention removed", **removed.as_dict())
    return removed.as_dict()


@app.task(name=REPAIR_LINKS)
def repair_customer_links() -> list[dict[str, str]]:
    """Daily: link or create the Customer of every customer account that has none (a signup
    whose customer write failed); logs and returns what it linked."""
    repaired = runtime.in_transaction(settings, lambda conn: repair_links(conn, settings.routes))
    report = [
        {"action": r.action, "userId": str(r.user_id), "customerId": str(r.customer_id)}
        for r in repaired
    ]
    if report:
        log.info("customer links repaired", repaired=len(report), links=report)
    return report
