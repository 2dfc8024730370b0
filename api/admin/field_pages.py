"""The Custom fields settings page (/admin/custom-fields, admins only): the typed fields of
leads and customers; define one, delete one (its values go with it)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from api.admin.auth import admin_only
from api.admin.dashboard_support import flash
from api.admin.page_kit import PAGE_EXCEPTIONS, form_error, render
from api.admin.params import AdminRequest
from api.transaction import Conn
from domain.custom_fields.definitions import (
    CreateField,
    create_field,
    delete_field,
    get_field,
    list_fields,
)
from domain.enums import CustomFieldEntity, CustomFieldType

PAGE = "/admin/custom-fields"


class FieldForm(msgspec.Struct):
    entity: CustomFieldEntity
    type: CustomFieldType
    key: Annotated[str, msgspec.Meta(max_length=64)] = ""
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""
    options: Annotated[str, msgspec.Meta(max_length=5_000)] = ""  # comma-separated (select)
    required: str = ""  # a checkbox: "on" when ticked

    def command(self) -> CreateField:
        options = [o.strip() for o in self.options.split(",") if o.strip()]
        try:
            return msgspec.convert(
                {
                    "entity": self.entity,
                    "key": self.key.strip(),
                    "label": self.label.strip(),
                    "type": self.type,
                    "options": options or None,
                    "required": bool(self.required),
                },
                CreateField,
            )
        except (msgspec.ValidationError, ValueError) as exc:
            raise form_error(exc) from exc


class FieldPagesController(Controller):
    path = PAGE
    guards = [admin_only]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTIONS

    @get("/")
    async def page(self, request: AdminRequest, conn: Conn) -> Template:
        return render(
            request,
            "admin/custom_fields.html",
            "fields",
            fields=await list_fields(conn),
            entities=list(CustomFieldEntity),
            types=list(CustomFieldType),
        )

    @post("/", status_code=303)
    async def create(
        self, request: AdminRequest, conn: Conn, data: URLEncodedBody[FieldForm]
    ) -> Redirect:
        field = await create_field(conn, data.command())
        flash(
            request, "ok", f"{field.entity.value} field {field.key} ({field.type.value}) created."
        )
        return Redirect(PAGE, status_code=303)

    @post("/{field_id:uuid}/delete", status_code=303)
    async def remove(
        self, request: AdminRequest, conn: Conn, field_id: FromPath[uuid.UUID]
    ) -> Redirect:
        field = await get_field(conn, field_id)
        await delete_field(conn, field_id)
        flash(request, "ok", f"{field.entity.value} field {field.key} deleted with its values.")
        return Redirect(PAGE, status_code=303)
