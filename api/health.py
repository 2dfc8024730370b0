"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

from infra.db import RETRY_AFTER_SECONDS, Database
from infra.migrate import head_revision


@get("/health/live", tags=["health"], summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def _database(db: Database) -> dict[str, Any]:
    try:
        async with db.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    head = head_revision()
    return {"ok": current == head, "migration": current, "head": head}


# The broker check answers within this, whatever the broker does (refuses, hangs, is slow).
BROKER_CHECK_SECONDS = 1.0


def _broker_reachable(url: str, options: dict[str, float]) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=0.5, transport_options=options) as conn:
            conn.ensure_connection(max_retries=1, timeout=0.5)
        return True
    except Exception:
        return False


class BrokerProbe:
    """Kombu's check blocks a thread for seconds against a dead broker (a refused port costs
    2 s, a broker that accepts and never answers its socket timeout). It runs in one thread
    of its own, never in the default pool that other blocking work shares, and probes that
    arrive while one is running wait for that one, for at most BROKER_CHECK_SECONDS."""

    def __init__(self, url: str, options: dict[str, float]) -> None:
        self._url, self._options = url, options
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-probe")
        self._running: asyncio.Future[bool] | None = None

    async def reachable(self) -> bool:
        if self._running is None or self._running.done():
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(
                self._pool, _broker_reachable, self._url, self._options
            )
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), BROKER_CHECK_SECONDS)
        except TimeoutError:
            return False


def broker_probe(state: State) -> BrokerProbe:
    probe: BrokerProbe | None = state.get("broker_probe")
    if probe is None:
        settings = state.settings
        probe = state.broker_probe = BrokerProbe(
            settings.broker_url, settings.broker_transport_options
        )
    return probe


@get("/health/ready", tags=["health"], summary="Database reachable and migrated; broker state")
async def ready(state: State) -> Response[dict[str, Any]]:
    """Ready without the broker: the outbox keeps every submission until the broker is back."""
    database = await _database(state.db)
    broker_ok = await broker_probe(state).reachable()
    body = {
        "status": "ready" if database["ok"] else "not ready",
        "database": database,
        "broker": {
            "ok": broker_ok,
            "note": None
            if broker_ok
            else "broker unreachable: submissions are still accepted and kept in the outbox; "
            "delivery resumes when it is back",
        },
    }
    if database["ok"]:
        return Response(body, status_code=200)
    return Response(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
