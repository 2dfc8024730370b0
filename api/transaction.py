"""The one transaction boundary of the API, and the one hook that runs after a commit.

Every handler that touches the database takes `conn`, provided here and registered once in
api/app.py (the form route, the hot path, enters `unit_of_work` itself only when a post
carries an Idempotency-Key). The request's use case
runs in one transaction that commits when the handler returns and rolls back when it raises
(Litestar throws the exception into the generator). Nothing below commits halfway: polar's
`get_db_session`, cosmicpython's unit of work.

Side effects outside the database run once, after a successful commit, from here: when the
request wrote outbox rows (`domain.outbox.rows` marks the connection), the dispatcher is woken.
The form fast path commits without a SQLAlchemy transaction (group commit) and calls the same
`after_commit` itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeAlias

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.outbox.rows import OUTBOX_WRITTEN
from infra.db import Database

# Set on app.state at start-up (api/app.py): wakes the dispatcher, or None when nothing pushes.
WAKER = "waker"


def after_commit(state: State) -> None:
    """What follows a committed write of outbox rows: wake the dispatcher (best effort, never
    blocks; the beat sweep is the safety net)."""
    wake: Callable[[], None] | None = state.get(WAKER)
    if wake is not None:
        wake()


class Transaction:
    """The request's unit of work: one connection in one transaction, opened on first use, so
    a handler that may not need the database (the form fast path) costs no checkout."""

    def __init__(self, db: Database, stack: AsyncExitStack) -> None:
        self._db = db
        self._stack = stack
        self._conn: AsyncConnection | None = None

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._stack.enter_async_context(self._db.engine.connect())
            # `info` belongs to the pooled DBAPI connection and outlives a checkout: start clean.
            conn.info.pop(OUTBOX_WRITTEN, None)
            await self._stack.enter_async_context(conn.begin())
            self._conn = conn
        return self._conn

    def take_outbox_mark(self) -> bool:
        """Whether this transaction wrote outbox rows (and forget it, for the next checkout)."""
        return self._conn is not None and bool(self._conn.info.pop(OUTBOX_WRITTEN, False))


@asynccontextmanager
async def unit_of_work(state: State) -> AsyncIterator[Transaction]:
    """The boundary itself: commit on success, roll back on error; then, once committed, the
    after-commit hook. Handlers get it through the `transaction`/`conn` dependencies; the one
    exception is the form route, see `submit_form` in api/public.py."""
    async with AsyncExitStack() as stack:
        transaction = Transaction(state.db, stack)
        try:
            yield transaction
        finally:
            wrote_outbox = transaction.take_outbox_mark()
    # Only reached when the commit succeeded (closing the stack commits, or raises).
    if wrote_outbox:
        after_commit(state)


async def provide_transaction(state: State) -> AsyncGenerator[Transaction, None]:
    async with unit_of_work(state) as transaction:
        yield transaction


async def provide_connection(transaction: NamedDependency[Transaction]) -> AsyncConnection:
    return await transaction.connection()


# What a handler declares: `conn: Conn`.
Conn: TypeAlias = NamedDependency[AsyncConnection]


DEPENDENCIES: dict[str, Any] = {
    "transaction": Provide(provide_transaction),
    "conn": Provide(provide_connection),
}
