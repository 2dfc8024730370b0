"""Group commit for the hottest write path: concurrent submissions share one statement.

Each public form submission is three inserts that commit together (`domain.outbox.rows.one_statement`).
Under load, dozens of them arrive within the same turn of the event loop; sending each as its own
statement costs each one a round trip, a driver call (most of the API's CPU per request) and a
transaction (a WAL flush in PostgreSQL). `GroupCommit` gathers the submissions that arrive while
the previous statements are in flight and writes them as one multi-row statement: the rows of one
submission still commit together (the statement is atomic), and no caller hears back before the
commit. If a grouped statement fails, each submission of the group is retried on its own, so one
bad submission never fails the others; unless the database itself failed (unreachable, timed
out): then the whole group gets that error at once, within the request's time budget, instead
of each submission waiting for it again.

A lone submission on a quiet server is written at once: the group is whatever is waiting, never
a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy import Dialect, Table

from domain.outbox.rows import OneStatement, Writes, one_statement
from infra.metrics import WRITE_GROUP_SIZE

log = logging.getLogger("crm.group_commit")

Execute = Callable[[bytes, Sequence[Any]], Awaitable[None]]


class GroupCommit:
    def __init__(
        self, dialect: Dialect, execute: Execute, max_group: int = 32, max_in_flight: int = 4
    ) -> None:
        self._dialect = dialect
        self._execute = execute
        self.max_group = max_group
        self.max_in_flight = max_in_flight
        self._waiting: list[tuple[Writes, asyncio.Future[None]]] = []
        self._in_flight = 0
        self._drains: set[asyncio.Task[None]] = set()
        # Figures for tests and operators: statements sent and submissions they carried.
        self.statements = 0
        self.submissions = 0

    async def write(self, writes: Writes) -> None:
        """Return once `writes` are committed (or raise what writing them alone raised)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((writes, done))
        if self._in_flight < self.max_in_flight:
            self._in_flight += 1
            # Its first step runs after the tasks already runnable in this turn have added
            # theirs; kept referenced, since the loop holds tasks only weakly.
            task = asyncio.get_running_loop().create_task(self._drain())
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        await done

    async def _drain(self) -> None:
        """Write groups while submissions wait; then leave (another call starts a new one)."""
        try:
            while self._waiting:
                group = self._waiting[: self.max_group]
                del self._waiting[: self.max_group]
                try:
                    await self._write_group(group)
                except psycopg.OperationalError as exc:
                    # The database, not a submission, failed (unreachable, timed out).
                    # Writing each alone would only wait for it again, and after a lost
                    # connection it is unknown whether the statement committed (atomically,
                    # all or nothing), so a retry could write it twice. Those queued behind
                    # the group meanwhile get the answer too: waiting for their own turn
                    # would take them past their time budget (CRM_DB_TIMEOUT). The callers
                    # hear 503 and may repeat, with an Idempotency-Key to be safe.
                    failed = group + self._waiting
                    self._waiting.clear()
                    for _, done in failed:
                        if not done.done():
                            done.set_exception(exc)
        finally:
            self._in_flight -= 1

    async def _write_group(self, group: list[tuple[Writes, asyncio.Future[None]]]) -> None:
        """Settle every future of `group`, or raise psycopg.OperationalError (see `_drain`)."""
        if len(group) == 1:
            await self._write_alone(*group[0], database_errors_raise=True)
            return
        statement = self._statement([w for w, _ in group])
        if statement is not None:
            try:
                await self._execute(statement.raw_sql, statement.values)
            except psycopg.OperationalError:
                raise
            except Exception as exc:
                log.warning(
                    "grouped write of %d submissions failed (%s); writing each alone",
                    len(group),
                    type(exc).__name__,
                )
            else:
                self._count(len(group))
                for _, done in group:
                    if not done.done():
                        done.set_result(None)
                return
        await asyncio.gather(*(self._write_alone(w, done) for w, done in group))

    async def _write_alone(
        self, writes: Writes, done: asyncio.Future[None], database_errors_raise: bool = False
    ) -> None:
        try:
            statement = one_statement(self._dialect, writes)
            if statement is None:
                raise ValueError("these writes do not fit in one statement")
            await self._execute(statement.raw_sql, statement.values)
        except Exception as exc:
            if database_errors_raise and isinstance(exc, psycopg.OperationalError):
                raise
            if not done.done():
                done.set_exception(exc)
            return
        self._count(1)
        if not done.done():
            done.set_result(None)

    def _count(self, submissions: int) -> None:
        self.statements += 1
        self.submissions += submissions
        WRITE_GROUP_SIZE.observe(submissions)

    def _statement(self, group: list[Writes]) -> OneStatement | None:
        """The group's rows, table by table in the order of the first submission."""
        tables: dict[Table, list[dict[str, Any]]] = {}
        shape = [t for t, rows in group[0] if rows]
        for writes in group:
            if [t for t, rows in writes if rows] != shape:
                return None  # submissions of different shapes: each alone
            for table, rows in writes:
                tables.setdefault(table, []).extend(rows)
        return one_statement(self._dialect, list(tables.items()))
