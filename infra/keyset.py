"""Keyset pagination: an opaque cursor holds the sort key of the last row of a page.

The next page is `WHERE (k1, k2, id) < (:k1, :k2, :id)` on an index in that order, so page
10,000 costs what page 1 costs, at any table size (no OFFSET). Every paged list declares its
`Keyset` (name, sort columns, how to read each back from a cursor) and calls `paginate`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import DomainError

MAX_PAGE_SIZE = 200
Parser = Callable[[Any], Any]
# What a cursor's key values may be: the strings and integers encode_cursor writes, each in
# the range of the columns they are compared with (bigint at most), nothing else (no floats,
# no Infinity, no nested lists). Anything outside is a 400 on `cursor`, never a database error.
_KeyValue = (
    Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    | Annotated[str, msgspec.Meta(max_length=64, pattern="^[^\\x00]*$")]
)
_CursorBody = tuple[str, list[_KeyValue]]


class BadCursor(DomainError):
    field = "cursor"


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(kind: str, values: Sequence[object]) -> str:
    raw = msgspec.json.encode([kind, [_plain(v) for v in values]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, parsers: Sequence[Parser]) -> list[Any]:
    """The key values of a cursor made by encode_cursor for the same list and sort.

    A cursor is client input like any other: whatever it holds (another list's keys, wrong
    types, huge numbers, bytes that are not JSON) is a BadCursor, never an exception a
    parser or the database would raise.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, values = msgspec.json.decode(raw, type=_CursorBody)
        if found_kind != kind or len(values) != len(parsers):
            raise ValueError(kind)
        return [parse(v) for parse, v in zip(parsers, values, strict=True)]
    except (
        ValueError,  # msgspec.DecodeError and UnicodeDecodeError are ValueErrors too
        TypeError,
        AttributeError,  # uuid.UUID(5)
        OverflowError,
        binascii.Error,
    ) as exc:
        raise BadCursor("cursor does not belong to this list or sort order") from exc


def parse_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value)


def after(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after the cursor in a descending order on `columns`."""
    return tuple_(*columns) < tuple_(*values)


@dataclass(frozen=True, slots=True)
class Keyset:
    """A list's sort order: newest (largest) first on `columns`, the last one unique (the id).

    `kind` names the list and sort in the cursor, so a cursor of one list is refused by another.
    """

    kind: str
    columns: tuple[Any, ...]
    parsers: tuple[Parser, ...]


async def paginate(
    conn: AsyncConnection,
    stmt: Select[Any],
    keyset: Keyset,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of `stmt` in the keyset's order, and the cursor of the next (None on the last)."""
    columns = keyset.columns
    if cursor:
        stmt = stmt.where(after(columns, decode_cursor(cursor, keyset.kind, keyset.parsers)))
    stmt = stmt.order_by(*(c.desc() for c in columns)).limit(limit + 1)
    rows = list((await conn.execute(stmt)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(keyset.kind, [getattr(last, c.key) for c in columns])
    return rows[:limit], next_cursor
