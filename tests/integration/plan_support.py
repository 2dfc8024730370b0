"""EXPLAIN helpers: plans of a partitioned table name its partitions and their own indexes;
these map each back to the table or index the schema declares (migration 0013)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

ROOTS = text(
    "SELECT c.relname, r.relname FROM pg_class c"
    " JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid), c.oid)"
    " WHERE c.relname = ANY(:names)"
)


async def declared_names(conn: AsyncConnection, names: Iterable[str]) -> dict[str, str]:
    """name -> the partitioned table or index it belongs to (itself for anything else)."""
    wanted = sorted({n for n in names if n})
    found = {child: root for child, root in await conn.execute(ROOTS, {"names": wanted})}
    return {n: found.get(n, n) for n in wanted} | {"": ""}


EMPTY = text(
    "SELECT relname FROM pg_class WHERE relname = ANY(:names) AND relkind = 'r'"
    " AND relispartition AND relpages = 0"
)


async def empty_partitions(conn: AsyncConnection, names: Iterable[str]) -> set[str]:
    """Partitions with no page (after VACUUM ANALYZE): the periods made ahead, an empty
    DEFAULT. Any scan of one reads no row, whichever node the planner picks for nothing."""
    wanted = sorted({n for n in names if n})
    return set((await conn.execute(EMPTY, {"names": wanted})).scalars())


def index_names(plan: dict[str, Any]) -> set[str]:
    """Every index a plan (EXPLAIN FORMAT JSON) names."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= index_names(child)
    return found


def declared_indexes_of(conn: Connection, sql: str) -> set[str]:
    """The declared indexes EXPLAIN shows for `sql` (a partition's own copy counts as its
    parent's), with sequential scans off: the planner's choice on tiny tables."""
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()[0]["Plan"]
    return {r[1] for r in conn.execute(ROOTS, {"names": sorted(index_names(plan))})}
