"""Engines and transactions. PostgreSQL through psycopg 3; SQLite as the embedded default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.config import Settings, async_url, sync_url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_sync_engine(settings: Settings, **kw: Any) -> Engine:
    url = sync_url(settings.database_url)
    if url.startswith("sqlite"):
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kw)


class Database:
    """The API's async engine, plus an autocommit twin for single-statement writes."""

    def __init__(self, settings: Settings) -> None:
        url = async_url(settings.database_url)
        self.is_postgres = url.startswith("postgresql")
        if self.is_postgres:
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
                pool_pre_ping=False,
            )
        else:
            self.engine = create_async_engine(url)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self, one_statement: bool = False) -> AsyncIterator[AsyncConnection]:
        """One use case, one transaction.

        `one_statement=True` promises a single SQL statement: on PostgreSQL it then runs in
        autocommit mode, which is just as atomic and saves the BEGIN and COMMIT round trips.
        """
        engine = self._autocommit if one_statement and self.is_postgres else self.engine
        async with engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
