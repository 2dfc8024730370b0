"""Engines and transactions. PostgreSQL through psycopg 3; SQLite as the embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
from psycopg import AsyncConnection as PgConnection
from psycopg import AsyncRawCursor, adapters
from psycopg.adapt import AdaptersMap
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Dialect, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.outbox.rows import Writes
from infra.group_commit import GroupCommit
from infra.settings import Settings, async_url, sync_url

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def insert_for(conn: AsyncConnection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING on PostgreSQL and SQLite alike."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def make_sync_engine(settings: Settings, **kw: Any) -> Engine:
    url = sync_url(settings.database_url)
    if url.startswith("sqlite"):
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kw)


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a fresh Database in its own event loop, and dispose of it (commands, tests)."""

    async def go() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


class Database:
    """The API's async engine.

    On PostgreSQL, statements that are a whole use case on their own (`execute_one`) go through
    psycopg's own connection pool instead: no SQLAlchemy pool checkout, compile or greenlet hop
    on the hottest write path.
    """

    def __init__(self, settings: Settings) -> None:
        url = async_url(settings.database_url)
        self.is_postgres = url.startswith("postgresql")
        self._pool_size = settings.db_pool_size
        self._conninfo = ""
        if self.is_postgres:
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
                pool_pre_ping=False,
            )
            self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        else:
            self.engine = create_async_engine(url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._writes: AsyncConnectionPool[PgConnection[Any]] | None = None  # opened on first use
        self._writes_lock = asyncio.Lock()
        self._group: GroupCommit | None = None

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, for commands and workers (the API's is api/transaction.py)."""
        async with self.engine.begin() as conn:
            yield conn

    async def execute_one(self, sql: bytes, values: Sequence[Any]) -> None:
        """PostgreSQL: run one statement that is a whole use case, atomic on its own.

        Autocommit (no BEGIN/COMMIT round trips), one round trip, as a server-side prepared
        statement on each pooled connection (the SQL of a use case is stable, see
        `domain.outbox.rows.one_statement`). `sql` has PostgreSQL's own placeholders (`$1`, `$2`)
        and goes through a raw cursor, which sends it without converting it on each call.
        """
        pool = self._writes or await self._open_writes()
        async with pool.connection() as conn:
            await AsyncRawCursor(conn).execute(sql, values, prepare=True)

    async def write_grouped(self, writes: Writes) -> None:
        """PostgreSQL: commit `writes` (one use case) in a statement shared with the use cases
        that arrive meanwhile (infra/group_commit.py); returns once they are committed."""
        if self._group is None:
            self._group = GroupCommit(self.dialect, self.execute_one)
        await self._group.write(writes)

    async def _open_writes(self) -> AsyncConnectionPool[PgConnection[Any]]:
        if not self.is_postgres:
            raise RuntimeError("execute_one needs PostgreSQL")
        async with self._writes_lock:
            if self._writes is None:
                context = AdaptersMap(adapters)
                set_json_dumps(msgspec.json.encode, context)  # same JSON, a fraction of the CPU
                pool: AsyncConnectionPool[PgConnection[Any]] = AsyncConnectionPool(
                    self._conninfo,
                    min_size=min(2, self._pool_size),
                    max_size=self._pool_size,
                    kwargs={"autocommit": True, "context": context},
                    name="crm-writes",
                    open=False,
                )
                await pool.open()
                self._writes = pool
        return self._writes

    async def dispose(self) -> None:
        if self._writes is not None:
            await self._writes.close()
            self._writes = None
        await self.engine.dispose()
