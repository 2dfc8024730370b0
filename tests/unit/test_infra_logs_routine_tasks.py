"""Celery's routine per-task lines are DEBUG lines: shown at DEBUG, hidden at INFO, failures kept."""

from __future__ import annotations

import io
import json
import logging

import pytest

from infra.logs import configure_logging
from infra.settings import Settings

RECEIVED = "Task %(name)s[%(id)s] received"


def lines_at(level: str) -> list[dict]:
    out = io.StringIO()
    configure_logging(
        Settings(log_format="json"), stream=out, level=level, quiet_tasks=["crm.dispatch"]
    )
    for name in ("crm.dispatch", "crm.other"):
        context = {"id": "1", "name": name}
        logging.getLogger("celery.worker.strategy").info(RECEIVED, context, extra={"data": context})
    beat = logging.getLogger("celery.beat")
    beat.info("Scheduler: Sending due task %s (%s)", "dispatch-sweep", "crm.dispatch")
    context = {"id": "2", "name": "crm.dispatch", "description": "raised", "exc": "Boom"}
    logging.getLogger("celery.app.trace").error(
        "Task %(name)s[%(id)s] %(description)s: %(exc)s", context, extra={"data": context}
    )
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(autouse=True)
def _restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_at_info_the_routine_lines_are_hidden_and_the_rest_kept():
    assert [(e["level"], e["event"]) for e in lines_at("INFO")] == [
        ("info", "Task crm.other[1] received"),
        ("error", "Task crm.dispatch[2] raised: Boom"),
    ]


def test_at_debug_the_routine_lines_show_as_debug():
    assert [(e["level"], e["event"]) for e in lines_at("DEBUG")] == [
        ("debug", "Task crm.dispatch[1] received"),
        ("info", "Task crm.other[1] received"),
        ("debug", "Scheduler: Sending due task dispatch-sweep (crm.dispatch)"),
        ("error", "Task crm.dispatch[2] raised: Boom"),
    ]
