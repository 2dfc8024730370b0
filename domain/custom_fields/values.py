"""Custom field values: checked and normalised on every write (400 naming
`customFields.<key>`), turned into list filters (`cf.<key>=value`) and CSV cells (`cf.<key>`).

Stored normalised so that equality filters are plain text comparisons on the JSON value:
text and select as strings, numbers as JSON numbers (integers when whole), dates as
YYYY-MM-DD strings, booleans as JSON true/false.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.definitions import FieldDefinition, cached_fields, list_fields
from domain.enums import CustomFieldEntity, CustomFieldType
from domain.errors import DomainError

MAX_TEXT = 2000
CSV_PREFIX = "cf."
TRUE_TEXT, FALSE_TEXT = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


class InvalidCustomField(DomainError):
    pass


def _bad(key: str, message: str) -> InvalidCustomField:
    return InvalidCustomField(f"customFields.{key}: {message}", field=f"customFields.{key}")


def check_value(field: FieldDefinition, value: Any, from_text: bool = False) -> Any:
    """The stored form of `value` for `field`, or InvalidCustomField. `from_text`: the value
    came from a query string or a CSV cell, so numbers and booleans arrive as strings."""
    key = field.key
    if field.type in (CustomFieldType.TEXT, CustomFieldType.SELECT):
        if not isinstance(value, str):
            raise _bad(key, "must be a string")
        value = value.replace("\x00", "").strip()
        if len(value) > MAX_TEXT:
            raise _bad(key, f"must be at most {MAX_TEXT} characters")
        if field.type == CustomFieldType.SELECT and value not in (field.options or []):
            raise _bad(key, f"must be one of {', '.join(field.options or [])}")
        return value
    if field.type == CustomFieldType.NUMBER:
        if from_text and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _bad(key, "must be a number") from None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _bad(key, "must be a number")
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    if field.type == CustomFieldType.BOOLEAN:
        if from_text and isinstance(value, str):
            text = value.strip().lower()
            if text in TRUE_TEXT | FALSE_TEXT:
                return text in TRUE_TEXT
        if not isinstance(value, bool):
            raise _bad(key, "must be true or false")
        return value
    # DATE
    if not isinstance(value, str):
        raise _bad(key, "must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value.strip()[:10] if "T" in value else value.strip()).isoformat()
    except ValueError:
        raise _bad(key, "must be a date (YYYY-MM-DD)") from None


def check_values(
    definitions: Iterable[FieldDefinition],
    values: Mapping[str, Any] | None,
    creating: bool,
    from_text: bool = False,
    enforce_required: bool = True,
) -> dict[str, Any]:
    """The normalised values of a write. Unknown keys are refused; null removes a value (not
    allowed for a required field); on creation every required field must be given."""
    by_key = {d.key: d for d in definitions}
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        field = by_key.get(key)
        if field is None:
            raise _bad(key, "is not a defined custom field")
        if value is None or (from_text and value == ""):
            if field.required and enforce_required and (creating or not from_text):
                raise _bad(key, "is required")
            out[key] = None
            continue
        out[key] = check_value(field, value, from_text)
    if creating and enforce_required:
        for field in by_key.values():
            if field.required and out.get(field.key) is None:
                raise _bad(field.key, "is required")
    return out


def merged(current: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values after a write: null removes a key."""
    result = dict(current or {})
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


async def checked_values(
    conn: AsyncConnection,
    entity: CustomFieldEntity,
    values: Mapping[str, Any] | None,
    creating: bool,
    *,
    cached: bool = False,
    enforce_required: bool = True,
) -> dict[str, Any]:
    """Read the definitions (fresh, or from the short cache on the form path) and check."""
    if not values and not creating:
        return {}
    definitions = await (cached_fields if cached else list_fields)(conn, entity)
    if not definitions and not values:
        return {}
    return check_values(definitions, values, creating, enforce_required=enforce_required)


def filter_params(query: Mapping[str, str]) -> dict[str, str]:
    """`cf.<key>=value` query parameters, by key."""
    return {k[len(CSV_PREFIX) :]: v for k, v in query.items() if k.startswith(CSV_PREFIX)}


async def filter_clauses(
    conn: AsyncConnection, table: Table, entity: CustomFieldEntity, wanted: Mapping[str, str]
) -> list[ColumnElement[bool]]:
    """Equality on each custom field named; a key that is not defined is a 400 (`cf.<key>`)."""
    if not wanted:
        return []
    by_key = {d.key: d for d in await list_fields(conn, entity)}
    clauses = []
    for key, raw in wanted.items():
        field = by_key.get(key)
        if field is None:
            raise DomainError(f"cf.{key}: not a defined custom field", field=f"cf.{key}")
        try:
            value = check_value(field, raw, from_text=True)
        except InvalidCustomField as exc:
            raise DomainError(
                exc.message.replace("customFields.", "cf."), field=f"cf.{key}"
            ) from exc
        clauses.append(table.c.custom_fields[key].as_string() == as_text(value))
    return clauses


def apply_filters(stmt: Select[Any], clauses: Iterable[ColumnElement[bool]]) -> Select[Any]:
    for clause in clauses:
        stmt = stmt.where(clause)
    return stmt


def as_text(value: Any) -> str:
    """A stored value as its JSON text (what `->>` gives on PostgreSQL), for filters and CSV."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_cells(
    definitions: Iterable[FieldDefinition], values: Mapping[str, Any] | None
) -> dict[str, str]:
    values = values or {}
    return {
        f"{CSV_PREFIX}{d.key}": "" if values.get(d.key) is None else as_text(values[d.key])
        for d in definitions
    }
