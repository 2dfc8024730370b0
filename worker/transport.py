"""The one HTTP call of the delivery hot path.

aiohttp, not httpx, chosen by measurement (bench/http_clients.py, one loopback receiver, this
2-core machine, shared with other work when measured): httpx.AsyncClient did 409 requests/s at
8 in flight and 49/s at 64 (its pool slows as concurrency grows), aiohttp.ClientSession 4,253/s
and 3,772/s (ceiling: wrk, 5,350/s). The design card's figures were ~1,270, ~290 and ~10,600/s.
httpx stays for everything that is not this hot path (alerts, tests).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class Reply:
    status: int | None
    body: str | None
    error: str | None
    duration_ms: float


def new_session(max_in_flight: int, timeout: float) -> aiohttp.ClientSession:
    """One pooled session per worker process, with a per-request timeout."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_in_flight, limit_per_host=max_in_flight),
        timeout=aiohttp.ClientTimeout(total=timeout),
        raise_for_status=False,
        auto_decompress=False,
    )


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> Reply:
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            excerpt = await resp.content.read(1024)
            status = resp.status
        return Reply(status, excerpt.decode("utf-8", "replace"), None, _ms(started))
    except TimeoutError:
        return Reply(None, None, "timeout", _ms(started))
    except aiohttp.ClientConnectorError as exc:
        return Reply(None, None, f"connection error: {exc.os_error or exc}", _ms(started))
    except (aiohttp.ClientError, asyncio.CancelledError, OSError) as exc:
        if isinstance(exc, asyncio.CancelledError):
            raise
        return Reply(None, None, f"{type(exc).__name__}: {exc}", _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
