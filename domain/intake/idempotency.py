"""Idempotency-Key: a repeat within the TTL returns the first response and writes nothing,
also when it arrives while the first is still running (it waits for the first answer)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import msgspec
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import IdempotencyKeyReused
from domain.models import IDEMPOTENCY_KEYS as KEYS
from domain.models import utcnow
from infra.db import Database

UseCase = Callable[[AsyncConnection], Awaitable[msgspec.Struct]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: bytes
    replayed: bool = False


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def _stored(db: Database, scope: str, key: str, fp: str, ttl: timedelta) -> Outcome | None:
    async with db.engine.connect() as conn:
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
    db: Database,
    use_case: UseCase,
    *,
    status_code: int,
    scope: str,
    key: str | None,
    request_body: bytes,
    ttl: timedelta,
    one_statement: bool = False,
) -> Outcome:
    """Run a use case in one transaction, recording its response under the key if one is given."""
    if key is None:
        async with db.transaction(one_statement=one_statement) as conn:
            result = await use_case(conn)
        return Outcome(status_code, msgspec.json.encode(result))
    fp = fingerprint(request_body)
    stored = await _stored(db, scope, key, fp, ttl)
    if stored is not None:
        return stored
    try:
        async with db.transaction() as conn:
            # Claim the key before the use case runs. A repeat arriving while this request is
            # in flight blocks on the key's unique index until we commit, then fails with an
            # IntegrityError and replays our answer (or, if we rolled back, runs in our place).
            now = utcnow()
            await conn.execute(
                delete(KEYS).where(
                    and_(KEYS.c.scope == scope, KEYS.c.key == key, KEYS.c.created_at <= now - ttl)
                )
            )
            await conn.execute(
                insert(KEYS).values(
                    key=key, scope=scope, fingerprint=fp, status_code=0, body=b"", created_at=now
                )
            )
            result = await use_case(conn)
            body = msgspec.json.encode(result)
            await conn.execute(
                update(KEYS)
                .where(KEYS.c.scope == scope, KEYS.c.key == key)
                .values(status_code=status_code, body=body)
            )
    except IntegrityError:
        # A concurrent request with the same key committed first; ours rolled back whole.
        stored = await _stored(db, scope, key, fp, ttl)
        if stored is None:
            raise
        return stored
    return Outcome(status_code, body)
