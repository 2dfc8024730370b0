"""Field definitions: create, list, change, delete; and a short per-process cache for the form
fast path, which must not read the definitions on every submission."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import CustomFieldEntity, CustomFieldType
from domain.errors import Conflict, DomainError, NotFound
from domain.models import CUSTOM_FIELDS, CUSTOMERS, LEADS, utcnow
from infra.db import Database

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Options = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]],
    msgspec.Meta(min_length=1, max_length=100),
]
CACHE_SECONDS = 5.0


class FieldDefinition(msgspec.Struct, rename="camel", frozen=True):
    id: uuid.UUID
    entity: CustomFieldEntity
    key: str
    label: str
    type: CustomFieldType
    options: list[str] | None
    required: bool


class CreateField(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    entity: CustomFieldEntity
    key: Key
    label: Label
    type: CustomFieldType
    options: Options | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.type == CustomFieldType.SELECT and not self.options:
            raise ValueError("options must be given for a select field")
        if self.type != CustomFieldType.SELECT and self.options:
            raise ValueError("options must be left out unless type is select")


class UpdateField(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """PATCH body: the label, the options of a select field, whether it is required."""

    label: Label | None = None
    options: Options | None = None
    required: bool | None = None


def _definition(row: Any) -> FieldDefinition:
    return FieldDefinition(
        row.id,
        CustomFieldEntity(row.entity),
        row.key,
        row.label,
        CustomFieldType(row.type),
        row.options,
        row.required,
    )


async def list_fields(
    conn: AsyncConnection, entity: CustomFieldEntity | None = None
) -> list[FieldDefinition]:
    stmt = select(CUSTOM_FIELDS).order_by(CUSTOM_FIELDS.c.entity, CUSTOM_FIELDS.c.key)
    if entity is not None:
        stmt = stmt.where(CUSTOM_FIELDS.c.entity == entity)
    return [_definition(r) for r in await conn.execute(stmt)]


async def get_field(conn: AsyncConnection, field_id: uuid.UUID) -> FieldDefinition:
    row = (await conn.execute(select(CUSTOM_FIELDS).where(CUSTOM_FIELDS.c.id == field_id))).first()
    if row is None:
        raise NotFound(f"no custom field with id {field_id}", field="id")
    return _definition(row)


async def create_field(conn: AsyncConnection, cmd: CreateField) -> FieldDefinition:
    now = utcnow()
    field_id = uuid.uuid4()
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(CUSTOM_FIELDS).values(
                    id=field_id,
                    entity=cmd.entity,
                    key=cmd.key,
                    label=cmd.label,
                    type=cmd.type,
                    options=cmd.options,
                    required=cmd.required,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:
        raise DuplicateField(f"a {cmd.entity.value} field {cmd.key!r} already exists") from exc
    forget_cache()
    return FieldDefinition(
        field_id, cmd.entity, cmd.key, cmd.label, cmd.type, cmd.options, cmd.required
    )


class DuplicateField(Conflict):
    field = "key"


async def update_field(
    conn: AsyncConnection, field_id: uuid.UUID, cmd: UpdateField
) -> FieldDefinition:
    current = await get_field(conn, field_id)
    values: dict[str, Any] = {}
    if cmd.label is not None:
        values["label"] = cmd.label
    if cmd.required is not None:
        values["required"] = cmd.required
    if cmd.options is not None:
        if current.type != CustomFieldType.SELECT:
            raise DomainError("options apply to select fields only", field="options")
        values["options"] = cmd.options
    if values:
        await conn.execute(
            update(CUSTOM_FIELDS)
            .where(CUSTOM_FIELDS.c.id == field_id)
            .values(**values, updated_at=utcnow())
        )
        forget_cache()
    return await get_field(conn, field_id)


async def delete_field(conn: AsyncConnection, field_id: uuid.UUID) -> None:
    """Delete the definition and its values from every row of its entity."""
    field = await get_field(conn, field_id)
    table = LEADS if field.entity == CustomFieldEntity.LEAD else CUSTOMERS
    column = table.c.custom_fields
    if conn.dialect.name == "postgresql":
        stripped: Any = column.op("-")(field.key)
        holding = column.op("?")(field.key)
    else:
        stripped = func.json_remove(column, f'$."{field.key}"')
        holding = func.json_type(column, f'$."{field.key}"').is_not(None)
    await conn.execute(update(table).where(holding).values(custom_fields=stripped))
    await conn.execute(delete(CUSTOM_FIELDS).where(CUSTOM_FIELDS.c.id == field_id))
    forget_cache()


_cache: dict[CustomFieldEntity, tuple[float, list[FieldDefinition]]] = {}


def forget_cache() -> None:
    _cache.clear()


def _fresh(entity: CustomFieldEntity) -> list[FieldDefinition] | None:
    hit = _cache.get(entity)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


async def cached_fields_of(db: Database, entity: CustomFieldEntity) -> list[FieldDefinition]:
    """As `cached_fields`, opening a connection only when the cache is stale (form fast path)."""
    fields = _fresh(entity)
    if fields is not None:
        return fields
    async with db.transaction() as conn:
        return await cached_fields(conn, entity)


async def cached_fields(conn: AsyncConnection, entity: CustomFieldEntity) -> list[FieldDefinition]:
    """The definitions of `entity`, at most CACHE_SECONDS old (per process): public forms
    read them only when they post customFields, and then rarely from the database."""
    hit = _cache.get(entity)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    fields = await list_fields(conn, entity)
    _cache[entity] = (now + CACHE_SECONDS, fields)
    return fields
