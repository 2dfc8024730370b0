"""A quiet terminal: sweeps that find nothing log nothing at INFO; a delivered batch logs one
line, and the dispatch run one summary."""

from __future__ import annotations

from tests.e2e.harness import Proc, free_port, wait_for
from tests.e2e.test_infra_observability import _json_lines, _worker_metrics

LAST_DISPATCH = "crm_worker_last_dispatch_timestamp_seconds"


def info_lines(proc: Proc, after: str) -> list[dict]:
    """INFO and louder JSON lines written after the line whose event contains `after`."""
    lines = _json_lines(proc.log())
    start = next(i for i, e in enumerate(lines) if after in str(e.get("event")))
    return [e for e in lines[start + 1 :] if e.get("level") != "debug"]


def sweeps_for(port: int, seconds: float) -> None:
    """Wait until the worker has finished dispatch runs spread over `seconds` (beat's sweeps)."""

    def last_run() -> float:
        samples = _worker_metrics(port)
        return max((v for (n, _), v in samples.items() if n == LAST_DISPATCH), default=0.0)

    first = wait_for(last_run, 30, "a first dispatch run")
    wait_for(lambda: last_run() >= first + seconds, 30, f"dispatch runs over {seconds}s")


def test_quiet_sweeps_log_nothing_and_a_delivery_logs_one_summary(make_stack):
    port = free_port()
    stack = make_stack(CRM_LOG_FORMAT="json", CRM_WORKER_METRICS_PORT=str(port))
    worker = stack.worker(concurrency=1)
    beat = stack.beat()  # a sweep every 0.2 s (CRM_SWEEP_SECONDS in the e2e environment)

    sweeps_for(port, 2.0)  # about ten sweeps, nothing due
    assert info_lines(worker, after="ready.") == []
    assert info_lines(beat, after="beat: Starting") == []

    r = stack.client().post("/api/forms/submit", json={"formType": "contact_us", "email": "a@b.io"})
    assert r.status_code == 201, r.text
    wait_for(lambda: stack.receiver.deliveries, 30, "the webhook at the receiver")
    wait_for(
        lambda: any("dispatch:" in str(e["event"]) for e in info_lines(worker, "ready.")),
        30,
        "the dispatch summary line",
    )
    sweeps_for(port, 1.0)  # later quiet sweeps add nothing

    lines = info_lines(worker, after="ready.")
    events = [e["event"] for e in lines]
    assert events == ["notifications delivered", "dispatch: delivered 1, failed 0"], events
    assert lines[0]["count"] == 1 and lines[0]["logger"] == "crm.delivery"
    assert lines[1]["by_target"] == {
        "BZION_HUB": {"delivered": 1, "retried": 0, "dead_lettered": 0}
    }
    assert lines[1]["logger"] == "crm.dispatch"
    assert info_lines(beat, after="beat: Starting") == []
