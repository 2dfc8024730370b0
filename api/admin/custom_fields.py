"""/api/admin/custom-fields: admins define the typed custom fields of leads and customers."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from api.admin.auth import admin_only
from api.transaction import Conn
from domain.custom_fields.definitions import (
    CreateField,
    FieldDefinition,
    UpdateField,
    create_field,
    delete_field,
    get_field,
    list_fields,
    update_field,
)
from domain.enums import CustomFieldEntity


class CustomFieldController(Controller):
    path = "/api/admin/custom-fields"
    guards = [admin_only]
    tags = ["admin: custom fields"]

    @get("/", summary="Custom field definitions (optionally of one entity)")
    async def index(
        self, conn: Conn, entity: FromQuery[CustomFieldEntity | None] = None
    ) -> list[FieldDefinition]:
        return await list_fields(conn, entity)

    @post("/", summary="Define a custom field (409 for a key the entity already has)")
    async def create(self, conn: Conn, data: JSONBody[CreateField]) -> FieldDefinition:
        return await create_field(conn, data)

    @get("/{field_id:uuid}", summary="One custom field definition")
    async def get_one(self, conn: Conn, field_id: FromPath[uuid.UUID]) -> FieldDefinition:
        return await get_field(conn, field_id)

    @patch("/{field_id:uuid}", summary="Change label, options (select) or required")
    async def update(
        self, conn: Conn, field_id: FromPath[uuid.UUID], data: JSONBody[UpdateField]
    ) -> FieldDefinition:
        return await update_field(conn, field_id, data)

    @delete("/{field_id:uuid}", summary="Delete a field and its values on every row")
    async def remove(self, conn: Conn, field_id: FromPath[uuid.UUID]) -> None:
        await delete_field(conn, field_id)
