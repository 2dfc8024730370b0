"""Engines and transactions. PostgreSQL through psycopg 3; SQLite as the embedded default."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
import psycopg
import sqlalchemy.exc
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

# Errors that say the database cannot be reached, or did not answer within the time budget
# (connection refused or lost, connect/pool/statement timeout), as opposed to bad data: the API
# answers them with 503 and Retry-After. psycopg's PoolTimeout and ConnectionTimeout are
# OperationalErrors; SQLAlchemy wraps the driver's as its own OperationalError.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,  # SQLAlchemy's pool checkout timeout
)
# What a 503 asks the caller to wait: a database restart takes seconds.
RETRY_AFTER_SECONDS = 5


def timeouts(settings: Settings, statements: bool = True) -> dict[str, Any]:
    """Connect arguments bounding every PostgreSQL call by CRM_DB_TIMEOUT (libpq's connect
    timeout counts whole seconds, at least 2; statement_timeout is the server's own bound).

    `statements=False` for commands (CSV import and export, repairs): a request's budget is
    no bound for a statement an operator started on a big table."""
    args: dict[str, Any] = {"connect_timeout": max(2, math.ceil(settings.db_timeout))}
    if statements:
        args["options"] = f"-c statement_timeout={int(settings.db_timeout * 1000)}"
    return args


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
    # Parameters (emails, phones) stay out of exception messages, hence out of tracebacks.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **kw)


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on a fresh Database in its own event loop, and dispose of it (commands, tests).

    No statement timeout: a command is not a request, and may rightly take long."""

    async def go() -> T:
        db = Database(settings, request_budget=False)
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

    Through a database outage both pools stay within CRM_DB_TIMEOUT (connect, checkout and
    statement timeouts) and hand out only live connections (SQLAlchemy's pre-ping, psycopg's
    check on checkout), so callers get a prompt error to turn into a 503 while it is down and
    every request succeeds again as soon as it is back: no stale connection outlives it.
    """

    def __init__(self, settings: Settings, *, request_budget: bool = True) -> None:
        url = async_url(settings.database_url)
        self.is_postgres = url.startswith("postgresql")
        self._pool_size = settings.db_pool_size
        self._timeout = settings.db_timeout
        self._conninfo = ""
        if self.is_postgres:
            self._connect_args = timeouts(settings, statements=request_budget)
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
                pool_pre_ping=True,  # a connection the server dropped is replaced, not used
                pool_timeout=settings.db_timeout,
                hide_parameters=True,  # no emails or phones in exception messages
                connect_args=self._connect_args,
            )
            self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        else:
            self._connect_args = {}
            self.engine = create_async_engine(url, hide_parameters=True)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._writes: AsyncConnectionPool[PgConnection[Any]] | None = None  # see open()
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

    async def open(self) -> None:
        """Open the form fast path's pool at start-up (PostgreSQL; a no-op on SQLite).

        Not lazily in the first request: its connection attempts and their log lines belong
        to the process, not to whichever request came first. It opens without waiting for
        the database, so the API starts (and answers 503) while the database is down.
        """
        if self.is_postgres:
            await self._open_writes()

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
                    kwargs={"autocommit": True, "context": context, **self._connect_args},
                    name="crm-writes",
                    open=False,
                    # A checkout costs one empty query (once per grouped statement, so a
                    # fraction of a round trip per submission) and never yields a connection
                    # the server dropped while it sat in the pool.
                    check=AsyncConnectionPool.check_connection,
                    timeout=self._timeout,
                    # Give up reconnecting after the same budget (a waiting request starts a
                    # new attempt at once): the pool's exponential backoff would otherwise
                    # reach minutes in a long outage and delay the recovery as long.
                    reconnect_timeout=self._timeout,
                )
                await pool.open(wait=False)
                self._writes = pool
        return self._writes

    async def dispose(self) -> None:
        if self._writes is not None:
            await self._writes.close()
            self._writes = None
        await self.engine.dispose()
