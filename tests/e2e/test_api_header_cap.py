"""`crm api` caps the request head (api/serving.py): oversized headers get a 431 from the
server itself, before the app, and the process keeps serving."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
import requests

from api.serving import MAX_HEAD_BYTES
from tests.e2e.harness import Proc, answers_200, free_port, wait_for


@pytest.fixture(scope="module")
def api_port(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": pg_url, "CRM_RATE_LIMIT": "off"}
    proc = Proc(["api", "--port", str(port)], env, tmp_path_factory.mktemp("cap") / "api.log")
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/health/live"), 60, "the API")
        yield port
    finally:
        proc.stop()


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # The server may close before reading everything: it has answered already.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(head)
        return s.recv(4096)


@pytest.mark.parametrize(
    "head",
    [
        # One huge header, sent whole.
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n",
        # Many small headers adding up past the cap.
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(400))
        + b"\r\n",
        # A header that never ends: the server must not buffer it forever.
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"c" * (MAX_HEAD_BYTES * 4),
    ],
)
def test_oversized_request_headers_get_a_431(api_port, head):
    answer = raw_request(api_port, head)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert requests.get(f"http://127.0.0.1:{api_port}/health/live", timeout=5).status_code == 200


def test_headers_within_the_cap_are_served(api_port):
    headers = {"X-Fine": "d" * (MAX_HEAD_BYTES // 2)}
    r = requests.get(f"http://127.0.0.1:{api_port}/health/live", headers=headers, timeout=5)
    assert r.status_code == 200
