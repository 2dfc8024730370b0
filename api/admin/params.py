"""Request and query parameter types shared by the admin controllers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.params import QueryParameter

from domain.accounts.users import SessionUser
from infra.keyset import MAX_PAGE_SIZE

AdminRequest = Request[SessionUser, Any, Any]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="page size")]
Cursor = Annotated[str | None, QueryParameter(max_length=500)]
