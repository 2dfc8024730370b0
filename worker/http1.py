"""A small HTTP/1.1 client for the delivery hot path: POST bytes, read a capped answer.

Why not aiohttp (the hot path's client until issue 14, chosen over httpx by measurement): its
request machinery was half of a worker's CPU, and the drain could not come near the raw aiohttp
loop it is measured against while paying that much per request. This client does only what a
webhook POST needs, on asyncio's transports (uvloop in the worker) with httptools for parsing
(llhttp, the parser uvicorn uses): bench/http_clients.py measures it against aiohttp.

What it does: keep-alive connections per origin (scheme, host, port), one request at a time on
each, idle ones closed after KEEPALIVE_SECONDS; http and https (certificates verified, SNI);
addresses from the egress-guarding resolver (infra/egress.py), connected to exactly as
returned, each tried in turn; the first `keep` bytes of an answer kept and at most `limit`
read, beyond which the connection is closed, not reused; headers of at most HEAD_LIMIT bytes;
one timeout for connecting and answering. What it never does: follow a redirect, decompress,
use a proxy or cookies, retry. A request that fails or is cancelled drops its connection.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

import httptools

from infra.egress import GuardedResolver

KEEPALIVE_SECONDS = 15.0  # an idle connection older than this is closed, not reused
DNS_TTL_SECONDS = 10.0  # a name's allowed addresses are reused this long (aiohttp's default)
HEAD_LIMIT = 64 * 1024  # bytes of status line and headers accepted
USER_AGENT = "crm-sync"


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class Target(NamedTuple):
    origin: Origin
    head: bytes  # "POST <path> HTTP/1.1\r\nHost: ...\r\nUser-Agent: ...\r\n"


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes  # at most the client's `keep` bytes


class ConnectError(OSError):
    """No connection could be made (refused, unreachable, resolution or egress refused)."""


class ProtocolError(Exception):
    """The answer could not be read: connection lost mid-answer, malformed, headers too big."""


@lru_cache(maxsize=1024)
def parse_target(url: str) -> Target:
    """The origin and the request line plus Host header of `url` (cached: a target's URL
    changes rarely). Raises ValueError on a URL that is not http(s) with a host."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    name = host.encode("idna").decode("ascii") if not host.isascii() else host
    shown = f"[{name}]" if ":" in name else name
    host_header = shown if port == default else f"{shown}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    _check_token(path, "request target")
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
    return Target(Origin(scheme, name, port), head.encode("ascii"))


def _check_token(value: str, what: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value or " " in value:
        raise ValueError(f"{what} holds a space or a control character: {value!r}")


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\0]")


def _header_block(headers: dict[str, str], length: int) -> bytes:
    lines = []
    for k, v in headers.items():
        if _TOKEN.fullmatch(k) is None or _FORBIDDEN_IN_VALUE.search(v) is not None:
            raise ValueError(f"header {k!r}: not a token name, or a line break or NUL in it")
        lines.append(f"{k}: {v}\r\n")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    return "".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One connection: one request at a time; the parser's callbacks fill the answer."""

    def __init__(self, keep: int, limit: int) -> None:
        self.keep, self.limit = keep, limit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.head_read = 0  # bytes read before the (final) answer's headers ended
        self._reset()

    def _reset(self) -> None:
        """Ready for an answer (a request's, or the final one after a 1xx)."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.read = 0
        self.headers_done = False
        self.finished = False  # the answer was handed over: anything after it is out of step
        self.framed = False  # Content-Length or chunked: the end is known without EOF
        self.reusable = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self._drop()  # bytes nobody asked for: the connection is out of step
            return
        counting = not self.headers_done
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.finished:
                self._drop()  # more after the answer (its own read): never reused
            else:
                self._fail(ProtocolError(f"malformed answer: {exc}"))
            return
        if counting:
            # Judged after parsing: a small head and a large body often come in one read.
            # At most one read (256 KiB) past the limit is held while the head is incomplete.
            self.head_read += len(data)
            if not self.headers_done and self.head_read > HEAD_LIMIT:
                self._fail(ProtocolError(f"answer headers over {HEAD_LIMIT} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.headers_done and not self.framed:
                self._finish(reusable=False)  # the answer's end is the connection's
            else:
                self._fail(ProtocolError("connection closed before the answer ended"), drop=False)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.finished:  # a second answer to one request, in the same read
            self._drop()
            raise ProtocolError("bytes after the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        self.headers[key] = value.decode("latin-1")
        if key == "content-length" or (key == "transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = self.status >= 200  # a 1xx is followed by the real answer

    def on_body(self, chunk: bytes) -> None:
        self.read += len(chunk)
        room = self.keep - len(self.body)
        if room > 0:
            self.body += chunk[:room]
        if self.read > self.limit:
            self._finish(reusable=False)  # enough: the rest is never read

    def on_message_complete(self) -> None:
        if not self.headers_done:  # an informational 1xx: the answer proper follows
            self._reset()
            return
        self._finish(reusable=self.parser.should_keep_alive())

    # outcome

    def _finish(self, reusable: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.reusable, self.finished = reusable, True
            self.waiter.set_result(Answer(self.status, self.headers, bytes(self.body)))
        if not reusable:
            self._drop()

    def _fail(self, exc: Exception, drop: bool = True) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if drop:
            self._drop()

    def _drop(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def send(self, data: bytes, deadline: float) -> Answer:
        """Write the request, wait for its answer until `deadline` (the loop's clock)."""
        assert self.transport is not None
        self._reset()
        self.head_read = 0
        self.parser = httptools.HttpResponseParser(self)
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        # A timer on the loop, not asyncio.timeout(): a few microseconds less per request.
        timer = loop.call_at(deadline, self._fail, TimeoutError())
        try:
            self.transport.write(data)
            return await self.waiter
        finally:
            timer.cancel()


@dataclass
class Client:
    """Pooled keep-alive connections, `limit_per_origin` idle ones at most per origin.

    The caller bounds how many requests run at once (the dispatcher's slots)."""

    resolver: GuardedResolver
    limit_per_origin: int = 64
    keep: int = 1024
    limit: int = 64 * 1024
    ssl_context: ssl.SSLContext | None = None
    _idle: dict[Origin, deque[_Connection]] = field(default_factory=dict)
    _busy: set[_Connection] = field(default_factory=set)
    _addresses: dict[Origin, tuple[float, list[Any]]] = field(default_factory=dict)

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        """POST `body`; TimeoutError when connecting and answering take over `timeout` s."""
        target = parse_target(url)
        data = target.head + _header_block(headers, len(body)) + body
        deadline = asyncio.get_running_loop().time() + timeout
        conn = self._take(target.origin)
        if conn is None:
            async with asyncio.timeout_at(deadline):
                conn = await self._connect(target.origin)
        self._busy.add(conn)
        try:
            answer = await conn.send(data, deadline)
        except BaseException:
            conn._drop()  # cancelled (a timeout) or failed mid-answer: never reused
            raise
        finally:
            self._busy.discard(conn)
        if conn.reusable and not conn.closed:
            self._give_back(target.origin, conn)
        return answer

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: least likely closed by the server
            if conn.closed or now - conn.idle_since > KEEPALIVE_SECONDS:
                conn._drop()
                continue
            return conn
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self.limit_per_origin:
            conn._drop()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        addresses = await self._resolve(origin)
        tls: dict[str, Any] = {}
        if origin.scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            tls = {"ssl": self.ssl_context, "server_hostname": origin.host}
        last: OSError | None = None
        for a in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(self.keep, self.limit),
                    a["host"],
                    a["port"] or origin.port,
                    family=a["family"],
                    **tls,
                )
            except OSError as exc:
                last = exc
                continue
            sock = conn.transport.get_extra_info("socket") if conn.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        raise ConnectError(str(last) if last else f"no address for {origin.host}")

    async def _resolve(self, origin: Origin) -> list[Any]:
        """The addresses the egress rule allows for the origin's host, cached DNS_TTL_SECONDS
        (a refusal is not cached: it is asked again at the next connection)."""
        now = time.monotonic()
        cached = self._addresses.get(origin)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            addresses = await self.resolver.resolve(origin.host, origin.port, socket.AF_UNSPEC)
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        if len(self._addresses) > 256:
            self._addresses.clear()
        self._addresses[origin] = (now + DNS_TTL_SECONDS, addresses)
        return addresses

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn._drop()
        self._idle.clear()
        for conn in list(self._busy):
            conn._drop()
        await self.resolver.close()
