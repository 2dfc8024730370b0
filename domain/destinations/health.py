"""A destination's health: backlog, last hour's outcomes and latency, breaker, last error."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.directory import aware
from domain.destinations.registry import get_target
from domain.destinations.state import breaker_view
from domain.models import ATTEMPTS, NOTIFICATIONS, utcnow
from domain.outbox.queries import is_unread
from infra.ratelimit import SharedState, namespace_for
from infra.settings import Settings

A, N = ATTEMPTS, NOTIFICATIONS
WINDOW = timedelta(hours=1)
_SHARED: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, SharedState]] = {}


def shared_state(settings: Settings) -> SharedState | None:
    """The guardrails' Redis state as the workers keep it (one client per process and event
    loop: an asyncio Redis client cannot be used from another loop, e.g. a second app)."""
    if not settings.guard_redis_url:
        return None  # no shared store: each worker keeps its own breaker
    key = (settings.guard_redis_url, settings.database_url)
    loop = asyncio.get_running_loop()
    cached = _SHARED.get(key)
    if cached is None or cached[0] is not loop:
        state = SharedState(settings.guard_redis_url, namespace_for(settings.database_url))
        cached = _SHARED[key] = (loop, state)
    return cached[1]


class TargetHealth(msgspec.Struct, rename="camel"):
    name: str
    enabled: bool
    unread: int
    oldest_unread_age_seconds: float | None
    delivered_last_hour: int  # attempts answered 2xx
    failed_last_hour: int  # attempts that did not deliver (error, timeout, non-2xx)
    latency_p50_ms: float | None  # of the last hour's attempts
    latency_p99_ms: float | None
    breaker_state: str
    paused_until: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def _delivered() -> Any:
    # A connector's acknowledgement (publisher confirm, PubAck) has no HTTP status and no error.
    return or_(
        and_(A.c.http_status >= 200, A.c.http_status < 300),
        and_(A.c.http_status.is_(None), A.c.error.is_(None)),
    )


def _failed() -> Any:
    """Not delivered, NULL-safe: an error without an answer, or a non-2xx answer."""
    return or_(
        and_(A.c.http_status.is_(None), A.c.error.isnot(None)),
        A.c.http_status < 200,
        A.c.http_status >= 300,
    )


async def _percentiles(
    conn: AsyncConnection, name: str, since: datetime
) -> tuple[float | None, float | None]:
    window = and_(A.c.target_system == name, A.c.started_at >= since)
    if conn.dialect.name == "postgresql":
        row = (
            await conn.execute(
                select(
                    func.percentile_cont(0.5).within_group(A.c.duration_ms),
                    func.percentile_cont(0.99).within_group(A.c.duration_ms),
                ).where(window)
            )
        ).one()
        return row[0], row[1]
    durations = sorted((await conn.execute(select(A.c.duration_ms).where(window))).scalars())
    if not durations:
        return None, None
    return _nearest(durations, 0.5), _nearest(durations, 0.99)


def _nearest(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


async def target_health(conn: AsyncConnection, settings: Settings, name: str) -> TargetHealth:
    view = await get_target(conn, settings, name)  # 404 for an unknown name
    now = utcnow()
    since = now - WINDOW
    unread, oldest = (
        await conn.execute(
            select(func.count(), func.min(N.c.created_at)).where(
                N.c.target_system == name, is_unread()
            )
        )
    ).one()
    delivered, failed = (
        await conn.execute(
            select(
                func.count().filter(_delivered()),
                func.count().filter(_failed()),
            ).where(A.c.target_system == name, A.c.started_at >= since)
        )
    ).one()
    p50, p99 = await _percentiles(conn, name, since)
    last = (
        await conn.execute(
            select(A.c.started_at, A.c.http_status, A.c.error)
            .where(A.c.target_system == name, _failed())
            .order_by(A.c.started_at.desc())
            .limit(1)
        )
    ).first()
    oldest_at = aware(oldest if not isinstance(oldest, str) else datetime.fromisoformat(oldest))
    shared = shared_state(settings)
    state, paused_until = (
        await breaker_view(name, shared) if shared is not None else ("unknown", None)
    )
    return TargetHealth(
        name=name,
        enabled=view.enabled,
        unread=int(unread),
        oldest_unread_age_seconds=(
            None if oldest_at is None else round((now - oldest_at).total_seconds(), 3)
        ),
        delivered_last_hour=int(delivered),
        failed_last_hour=int(failed),
        latency_p50_ms=None if p50 is None else round(float(p50), 1),
        latency_p99_ms=None if p99 is None else round(float(p99), 1),
        breaker_state=state,
        paused_until=paused_until,
        last_error=None if last is None else _describe(last.http_status, last.error),
        last_error_at=None if last is None else aware(last.started_at),
    )


def _describe(status: int | None, error: str | None) -> str:
    if status is None:
        return error or "unknown error"
    return f"HTTP {status}" + (f" ({error})" if error else "")
