"""The Celery app: broker from CELERY_BROKER_URL, beat schedule from the settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import setup_logging

from domain.outbox.rows import DISPATCH_TASK
from infra.broker import register_transports
from infra.logs import configure_logging
from infra.settings import Settings

DISPATCH = DISPATCH_TASK
STATS = "crm.stats_snapshot"
STALE = "crm.check_stale"
RETENTION = "crm.retention"
PARTITIONS = "crm.outbox_partitions"
QUOTE_EXPIRY = "crm.expire_quotes"
REPAIR_LINKS = "crm.repair_customer_links"


def make_celery(settings: Settings) -> Celery:
    register_transports()
    app = Celery("crm", broker=settings.broker_url, include=["worker.tasks"])
    sweep = settings.sweep_seconds
    app.conf.update(
        task_default_queue=settings.celery_queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=settings.broker_transport_options,
        worker_send_task_events=True,  # Flower shows tasks live
        task_send_sent_event=True,
        timezone="UTC",
        beat_schedule={
            "dispatch-sweep": {
                "task": DISPATCH,
                "schedule": timedelta(seconds=sweep),
                "options": {"expires": max(sweep * 2, 1.0)},
            },
            "stats-snapshot": {
                "task": STATS,
                "schedule": timedelta(seconds=settings.stats_seconds),
            },
            "stale-check": {
                "task": STALE,
                "schedule": timedelta(seconds=settings.stale_check_seconds),
            },
            "retention": {"task": RETENTION, "schedule": timedelta(days=1)},
            "outbox-partitions": {"task": PARTITIONS, "schedule": timedelta(hours=1)},
            "quote-expiry": {
                "task": QUOTE_EXPIRY,
                "schedule": timedelta(seconds=settings.quote_expiry_check_seconds),
            },
            "repair-customer-links": {"task": REPAIR_LINKS, "schedule": timedelta(days=1)},
        },
    )
    return app


settings = Settings.from_env()
app = make_celery(settings)


@setup_logging.connect
def _structured_logs(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery's own lines, ours and the tasks' all go through structlog (infra/logs.py).

    The periodic tasks' routine lines (received, succeeded, sent by beat) are DEBUG lines."""
    configure_logging(
        settings,
        level=loglevel,
        quiet_tasks=(DISPATCH, STATS, STALE, RETENTION, PARTITIONS, QUOTE_EXPIRY, REPAIR_LINKS),
    )
