"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
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


def _broker_reachable(url: str, options: dict[str, float]) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=1, transport_options=options) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return True
    except Exception:
        return False


@get("/health/ready", tags=["health"], summary="Database reachable and migrated; broker state")
async def ready(state: State) -> Response[dict[str, Any]]:
    """Ready without the broker: the outbox keeps every submission until the broker is back."""
    settings = state.settings
    database = await _database(state.db)
    broker_ok = await asyncio.to_thread(
        _broker_reachable, settings.broker_url, settings.broker_transport_options
    )
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
