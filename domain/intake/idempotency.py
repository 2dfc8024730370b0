"""Idempotency-Key: a repeat within the TTL returns the first response and writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import IdempotencyKeyReused
from domain.models import IDEMPOTENCY_KEYS as KEYS
from domain.models import utcnow
from infra.db import insert_for

UseCase = Callable[[AsyncConnection], Awaitable[msgspec.Struct]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: bytes
    replayed: bool = False


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def delete_expired_keys(conn: AsyncConnection, ttl: timedelta, now: datetime) -> int:
    """Keys past their TTL can no longer replay anything (retention, worker/tasks.py)."""
    result = await conn.execute(delete(KEYS).where(KEYS.c.created_at < now - ttl))
    return result.rowcount


async def _stored(
    conn: AsyncConnection, scope: str, key: str, fp: str, ttl: timedelta
) -> Outcome | None:
    row = (
        await conn.execute(
            select(KEYS.c.fingerprint, KEYS.c.status_code, KEYS.c.body).where(
                KEYS.c.scope == scope, KEYS.c.key == key, KEYS.c.created_at > utcnow() - ttl
            )
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != fp:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    return Outcome(row.status_code, row.body, replayed=True)


async def run(
    conn: AsyncConnection,
    use_case: UseCase,
    *,
    status_code: int,
    scope: str,
    key: str | None,
    request_body: bytes,
    ttl: timedelta,
) -> Outcome:
    """Run a use case in the caller's transaction, recording its response under the key if one
    is given: the record commits or rolls back with the use case's rows."""
    if key is None:
        return Outcome(status_code, msgspec.json.encode(await use_case(conn)))
    fp = fingerprint(request_body)
    stored = await _stored(conn, scope, key, fp, ttl)
    if stored is not None:
        return stored
    # Claim the key before the use case runs. A concurrent request with the same key waits here
    # on the key's unique index until the first one commits, then finds its record instead of
    # failing the transaction on a duplicate.
    now = utcnow()
    where = and_(KEYS.c.scope == scope, KEYS.c.key == key)
    await conn.execute(delete(KEYS).where(where, KEYS.c.created_at <= now - ttl))
    claim = (
        insert_for(conn)(KEYS)
        .values(key=key, scope=scope, fingerprint=fp, status_code=status_code, body=b"")
        .values(created_at=now)
        .on_conflict_do_nothing()
        .returning(KEYS.c.key)
    )
    if (await conn.execute(claim)).first() is None:
        stored = await _stored(conn, scope, key, fp, ttl)
        if stored is None:  # the other request's record expired meanwhile
            raise IdempotencyKeyReused("this Idempotency-Key is in use by another request")
        return stored
    body = msgspec.json.encode(await use_case(conn))
    await conn.execute(update(KEYS).where(where).values(body=body))
    return Outcome(status_code, body)
