"""A destination's run-time state: the `crm_target_state` row (disabled, failing since, last
success, last error) and the breaker/pause hash the workers share in Redis.

The worker writes both (worker/guardrails.py); the API reads them (`breaker_view`, `states`) and
clears a disable (`enable`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.guardrails import Breaker
from domain.models import TARGET_STATE, utcnow
from infra.ratelimit import RedisError, SharedState

S = TARGET_STATE


@dataclass(frozen=True, slots=True)
class TargetState:
    name: str
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_reason is not None


async def states(conn: AsyncConnection) -> dict[str, TargetState]:
    rows = await conn.execute(select(S))
    return {
        r.name: TargetState(
            r.name,
            r.disabled_reason,
            r.disabled_at,
            r.failing_since,
            r.last_success_at,
            r.last_error,
        )
        for r in rows
    }


def _upsert(conn: AsyncConnection, name: str, **values: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values["updated_at"] = utcnow()
    stmt = dialect.insert(S).values(name=name, **values)
    return stmt, stmt.excluded


async def note_success(conn: AsyncConnection, name: str) -> None:
    """A success: no longer failing."""
    stmt, excluded = _upsert(conn, name, last_success_at=utcnow(), failing_since=None)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[S.c.name],
            set_={
                "last_success_at": excluded.last_success_at,
                "failing_since": None,
                "updated_at": excluded.updated_at,
            },
        )
    )


async def note_failure(conn: AsyncConnection, name: str, error: str) -> datetime:
    """A batch without a success: keep the first failure's time; returns it."""
    stmt, excluded = _upsert(conn, name, failing_since=utcnow(), last_error=error[:500])
    done = await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[S.c.name],
            set_={
                "failing_since": func.coalesce(S.c.failing_since, excluded.failing_since),
                "last_error": excluded.last_error,
                "updated_at": excluded.updated_at,
            },
        ).returning(S.c.failing_since)
    )
    since = done.scalar_one()
    return since if since.tzinfo else since.replace(tzinfo=UTC)


async def disable(conn: AsyncConnection, name: str, reason: str) -> bool:
    """Disable the destination with `reason`; True when it was enabled until now (alert once)."""
    now = utcnow()
    stmt, _ = _upsert(conn, name, disabled_reason=reason[:500], disabled_at=now)
    done = await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[S.c.name],
            set_={"disabled_reason": reason[:500], "disabled_at": now, "updated_at": now},
            where=S.c.disabled_reason.is_(None),
        ).returning(S.c.name)
    )
    return done.first() is not None


async def enable(conn: AsyncConnection, name: str) -> bool:
    """Clear a disable (and the failing streak that led to it); its rows are delivered again."""
    done = await conn.execute(
        update(S)
        .where(S.c.name == name)
        .values(disabled_reason=None, disabled_at=None, failing_since=None, updated_at=utcnow())
    )
    return bool(done.rowcount)


def decode_breaker(raw: dict[str, str]) -> Breaker:
    def num(key: str) -> float | None:
        return float(raw[key]) if raw.get(key) else None

    return Breaker(
        failures=int(raw.get("failures") or 0),
        open_until=num("open_until"),
        trips=int(raw.get("trips") or 0),
        paused_until=num("paused_until"),
    )


def encode_breaker(b: Breaker) -> dict[str, str]:
    """The Redis hash; empty (the key is deleted) for a healthy destination. A pause already
    over is dropped."""
    paused = b.paused_until if b.paused_until and b.paused_until > time.time() else None
    out = {"failures": str(b.failures), "trips": str(b.trips)}
    if b.open_until is not None:
        out["open_until"] = repr(b.open_until)
    if paused is not None:
        out["paused_until"] = repr(paused)
    return out if (b.failures or b.open_until is not None or paused) else {}


async def breaker_view(
    name: str, shared: SharedState, now: float | None = None
) -> tuple[str, datetime | None]:
    """(breaker state: closed/open/half_open, until when the destination waits or None), as
    every worker sees it; ("unknown", None) while Redis cannot be read."""
    try:
        b = decode_breaker(await shared.read(name))
    except RedisError:
        return "unknown", None
    now = time.time() if now is None else now
    until = b.waits_until(now)
    return b.state(now).value, datetime.fromtimestamp(until, UTC) if until is not None else None
