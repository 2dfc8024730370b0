"""Two-way sync: a destination's signed status changes and assignments come in here.

No session and no CSRF token (those guard the signed-in side only, api/admin): the request is
authenticated by its Standard Webhooks signature, checked over the raw body before anything
decodes it, so the handler reads `request.body()` and never Litestar's JSON body.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import PathParameter

from api import directory
from api.transaction import Conn
from domain.leads.inbound import InboundResult, receive_change

TargetName = Annotated[str, PathParameter(max_length=50, description="the destination's name")]


@post(
    "/api/v1/inbound/{target_name:str}",
    status_code=200,
    tags=["inbound"],
    summary="A destination's signed lead change (lead.status_changed, lead.assigned)",
)
async def receive_inbound(
    request: Request, state: State, conn: Conn, target_name: TargetName
) -> InboundResult:
    """Body `{"type": "lead.status_changed", "data": {"leadId"|"email", "status"}}` or
    `{"type": "lead.assigned", "data": {"leadId"|"email", "assignedTo"}}`, signed with the
    destination's own secret (Standard Webhooks headers). 401 unsigned or stale, 200
    `{"duplicate": true}` for a replayed webhook-id, 409 for a move the rules refuse."""
    body = await request.body()
    return await receive_change(
        conn, state.settings, target_name, body, request.headers, directory.routes(state)
    )
