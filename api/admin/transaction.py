"""One admin request, one use case, one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db import Database

T = TypeVar("T")


async def run(state: State, use_case: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    db: Database = state.db
    async with db.transaction() as conn:
        return await use_case(conn)
