"""The one HTTP call of the delivery hot path.

The client is worker/http1.py's (keep-alive HTTP/1.1 on the loop's transports, httptools
parsing), not aiohttp's since issue 14: in the drain, aiohttp's request machinery was half of a
worker's CPU, as much as the whole raw aiohttp loop the drain is measured against
(bench/http_clients.py compares them). Before that, aiohttp had been chosen over httpx by
measurement: httpx.AsyncClient did 409 requests/s at 8 in flight and 49/s at 64, aiohttp 4,253/s
and 3,772/s (wrk: 5,350/s). httpx stays for everything that is not this hot path (connectors,
alerts, tests).

Two rules live here. Redirects are never followed: a 301/302 POST turned into a body-less GET
whose 200 looked like a delivery would send the signed headers to whatever host `Location`
names. And a request's timeout is its own: the caller holds one of the dispatcher's slots before
calling `post`, whose clock starts then, so time spent queueing for a slot never counts (a slow
receiver would otherwise turn into timeouts and double deliveries).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from infra.egress import EgressRefused, GuardedResolver, IPNetwork, check_literal
from worker.http1 import Client, ConnectError, ProtocolError

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


def new_session(max_in_flight: int, egress_allow: Sequence[IPNetwork] = ()) -> Client:
    """One pooled client per worker process; no client-wide timeout (see `post`).

    Its resolver refuses the addresses the egress rule forbids (infra/egress.py), and the
    client connects to the address it returned: no second lookup.
    """
    return Client(
        GuardedResolver(egress_allow),
        limit_per_origin=max_in_flight,
        keep=EXCERPT,
        limit=READ_LIMIT,
    )


async def post(
    session: Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    egress_allow: tuple[IPNetwork, ...] = (),
) -> Reply:
    """POST once, never following a redirect, within `timeout` seconds from now.

    Call it while holding one of the dispatcher's `max_in_flight` slots, so the timeout
    measures the receiver (and a connection's set-up) only, never a wait for a slot.
    An IP-literal host the egress rule forbids is refused here; a name is checked by the
    client's resolver. At most READ_LIMIT bytes of an answer are read, EXCERPT kept.
    """
    started = time.perf_counter()
    try:
        check_literal(url, egress_allow)
    except EgressRefused as exc:
        return Reply(None, None, f"connection error: egress refused: {exc.reason}", _ms(started))
    try:
        answer = await session.post(url, body, headers, timeout)
    except TimeoutError:
        return Reply(None, None, "timeout", _ms(started))
    except ConnectError as exc:
        return Reply(None, None, f"connection error: {exc}", _ms(started))
    except (ProtocolError, ValueError, OSError) as exc:
        return Reply(None, None, f"{type(exc).__name__}: {exc}", _ms(started))
    status, error = answer.status, None
    if 300 <= status < 400:
        location = answer.headers.get("location")
        error = f"redirect not followed, Location: {(location or '(none)')[:LOCATION_EXCERPT]}"
    retry_after = parse_retry_after(answer.headers.get("retry-after"))
    return Reply(status, answer.body.decode("utf-8", "replace"), error, _ms(started), retry_after)


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
