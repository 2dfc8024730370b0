"""`crm run` on the embedded default: SQLite, a server-less broker, a demo hub; no servers."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx

from tests.e2e.harness import Proc, answers_200, free_port, wait_for


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their pool processes, ...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_crm_run_turns_a_form_into_a_verified_signed_webhook(tmp_path):
    port, hub = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = Proc(
        ["run", "--port", str(port), "--hub-port", str(hub)],
        env,
        tmp_path / "run.log",
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/health/live"), 60, "the API")
        wait_for(lambda: "ready." in proc.log(), 60, "the worker")
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/forms/submit",
            json={"formType": "quote_request", "email": "buyer@company.com"},
        )
        assert r.status_code == 201
        note_id = r.json()["notificationId"]
        wait_for(lambda: f"id {note_id}, signature verified" in proc.log(), 30, "the demo hub")
        db = sqlite3.connect(tmp_path / "crm.db")
        wait_for(
            lambda: db.execute("SELECT read FROM crm_notifications").fetchone() == (1,),
            15,
            "the row marked read",
        )
        assert (tmp_path / "crm-broker.db").exists()
        assert "REJECTED" not in proc.log()
        # Stopped like a terminal's Ctrl-C or `kill -- -PGID`: every process goes, none stays.
        children = descendants(proc.popen.pid)
        assert len(children) >= 4, children  # hub-demo, api, worker (+ its pool), beat
        os.killpg(proc.popen.pid, signal.SIGTERM)
        assert proc.popen.wait(timeout=30) == 0, proc.log()[-3000:]
        wait_for(lambda: not any(alive(c) for c in children), 5, "no process left behind")
    finally:
        proc.stop()
