"""Real processes for end-to-end tests: an HTTP receiver on loopback, Celery workers and beat."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_200(url: str) -> bool:
    """True once `url` answers 200 (a server coming up), False while it cannot be reached."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(
    condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.02
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message}")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float
    method: str = "POST"

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


# (status, delay seconds) or (status, delay seconds, extra response headers)
Behaviour = Callable[[Delivery, int], "tuple[int, float] | tuple[int, float, dict[str, str]]"]


def always(status: int) -> Behaviour:
    return lambda _d, _n: (status, 0.0)


@dataclass
class Receiver:
    """Records every request (POST, and GET/HEAD a redirect would send);
    `behaviour(delivery, nth_for_this_id)` -> (status, delay seconds[, headers])."""

    port: int = field(default_factory=free_port)
    behaviour: Behaviour = field(default_factory=lambda: always(200))
    deliveries: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                d = Delivery(
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    self.command,
                )
                with receiver._lock:
                    receiver.deliveries.append(d)
                    nth = sum(
                        1
                        for x in receiver.deliveries
                        if x.headers.get("webhook-id") == d.headers.get("webhook-id")
                    )
                status, delay, *extra = receiver.behaviour(d, nth)
                if delay:
                    time.sleep(delay)
                payload = b'{"ok": true}'
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_HEAD = do_PUT = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 1024  # the listen backlog: 64 connections arrive at once

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [d.headers["webhook-id"] for d in self.deliveries if "webhook-id" in d.headers]


class Proc:
    """A `crm` subprocess in its own process group, so SIGKILL reaches its children too."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "-c", "from crm_cli import main; main()", *args],
            cwd=cwd or ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, marker: str, timeout: float = 90) -> None:
        wait_for(lambda: marker in self.log() or self.popen.poll() is not None, timeout, marker)
        assert self.popen.poll() is None, self.log()[-3000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()


def base_env(
    pg_url: str, broker_url: str, queue: str, target_url: str, **extra: str
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": pg_url,
        "CELERY_BROKER_URL": broker_url,
        "CRM_CELERY_QUEUE": queue,
        "CRM_TARGET_BZION_HUB_URL": target_url,
        "CRM_TARGET_BZION_HUB_SECRET": SECRET,
        "CRM_RETRY_SCHEDULE": "0.3",
        "CRM_RETRY_JITTER": "0",
        "CRM_SWEEP_SECONDS": "0.2",
        "CRM_DELIVERY_TIMEOUT": "2",
        "CRM_LEASE_SECONDS": "10",
        "PYTHONUNBUFFERED": "1",
        "CRM_RATE_LIMIT": "off",
        # Receivers listen on 127.0.0.1, which the egress rule refuses unless allowed.
        "CRM_EGRESS_ALLOW": "127.0.0.1/32",
    }
    env.update(extra)
    return env
