"""The one HTTP call of the delivery hot path.

aiohttp, not httpx, chosen by measurement (bench/http_clients.py, one loopback receiver, this
2-core machine, shared with other work when measured): httpx.AsyncClient did 409 requests/s at
8 in flight and 49/s at 64 (its pool slows as concurrency grows), aiohttp.ClientSession 4,253/s
and 3,772/s (ceiling: wrk, 5,350/s). The design card's figures were ~1,270, ~290 and ~10,600/s.
httpx stays for everything that is not this hot path (alerts, tests).

Two rules live here. Redirects are never followed: aiohttp would turn a 301/302 POST into a
body-less GET whose 200 looked like a delivery, and send the signed headers to whatever host
`Location` names. And a request's timeout is its own: the caller holds one of the pool's slots
before calling `post`, whose clock starts then, so time spent queueing for a connection never
counts (aiohttp's `total` timeout would include it, and a slow receiver then turned into
timeouts and double deliveries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from infra.egress import EgressRefused, GuardedResolver, IPNetwork, check_literal

LOCATION_EXCERPT = 300  # an untrusted header, kept short in the attempt log
EXCERPT = 1024  # bytes of an answer kept in the attempt log
READ_LIMIT = 64 * 1024  # bytes of an answer read at most


@dataclass(frozen=True, slots=True)
class Reply:
    status: int | None
    body: str | None
    error: str | None
    duration_ms: float
    retry_after: float | None = None  # seconds the receiver asked us to wait, when it said so


def new_session(
    max_in_flight: int, egress_allow: Sequence[IPNetwork] = ()
) -> aiohttp.ClientSession:
    """One pooled session per worker process; no session-wide timeout (see `post`).

    Its resolver refuses the addresses the egress rule forbids (infra/egress.py), and the
    connector connects to the address it returned: no second lookup.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_in_flight,
            limit_per_host=max_in_flight,
            resolver=GuardedResolver(egress_allow),
        ),
        # No aiohttp timeout at all: its `total` and `connect` include the wait for a pooled
        # connection. `post` bounds the whole request once a slot is held instead.
        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None),
        raise_for_status=False,
        auto_decompress=False,
    )


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    egress_allow: tuple[IPNetwork, ...] = (),
) -> Reply:
    """POST once, never following a redirect, within `timeout` seconds from now.

    Call it while holding one of the dispatcher's `max_in_flight` slots (the connector's
    limit), so a connection is free at once and the timeout measures the receiver only.
    An IP-literal host the egress rule forbids is refused here (aiohttp resolves no literal);
    a name is checked by the session's resolver. At most READ_LIMIT bytes of an answer are
    read, EXCERPT kept.
    """
    started = time.perf_counter()
    try:
        check_literal(url, egress_allow)
    except EgressRefused as exc:
        return Reply(None, None, f"connection error: egress refused: {exc.reason}", _ms(started))
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                excerpt = await _read_capped(resp)
                status = resp.status
                location = resp.headers.get("Location")
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    except TimeoutError:
        return Reply(None, None, "timeout", _ms(started))
    except aiohttp.ClientConnectorError as exc:
        return Reply(None, None, f"connection error: {exc.os_error or exc}", _ms(started))
    except (aiohttp.ClientError, OSError) as exc:
        return Reply(None, None, f"{type(exc).__name__}: {exc}", _ms(started))
    error = None
    if 300 <= status < 400:
        error = f"redirect not followed, Location: {(location or '(none)')[:LOCATION_EXCERPT]}"
    return Reply(status, excerpt.decode("utf-8", "replace"), error, _ms(started), retry_after)


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The first EXCERPT bytes; the body is read (and dropped) up to READ_LIMIT bytes so the
    connection can be reused, no further: a huge answer never fills the worker's memory."""
    kept = await resp.content.read(EXCERPT)
    left = READ_LIMIT - len(kept)
    while left > 0 and not resp.content.at_eof():
        chunk = await resp.content.read(min(left, 16 * 1024))
        if not chunk:
            break
        left -= len(chunk)
    return kept[:EXCERPT]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from `now` named by a Retry-After header (RFC 9110: delay-seconds or an
    HTTP-date); None when absent or unreadable. A date in the past is 0. Not capped here:
    the cap is the retry policy's (domain/rules.py)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():  # delay-seconds: 1*DIGIT, nothing else
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in RFC 5322 terms; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
