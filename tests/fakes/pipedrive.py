"""Pipedrive's persons (API v2) and leads (API v1) endpoints as documented
(https://developers.pipedrive.com/docs/api/v1/Leads, .../v2/Persons): `x-api-token` header,
`{"success": true, "data": ...}` answers, `{"success": false, "error": ...}` errors, 429 with
x-ratelimit-* headers and Retry-After on demand."""

from __future__ import annotations

import re
import uuid
from itertools import count
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

TOKEN = "0123456789abcdef0123456789abcdef01234567"
_LEAD = re.compile(r"^/api/v1/leads/([0-9a-f-]{36})$")


def _ok(data: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "data": data, **extra}


def _error(message: str, status: int) -> dict[str, Any]:
    return {
        "success": False,
        "error": message,
        "errorCode": status,
        "error_info": "Please check developers.pipedrive.com",
    }


class FakePipedrive(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.persons: dict[int, dict[str, Any]] = {}
        self.leads: dict[str, dict[str, Any]] = {}
        self._ids = count(1)
        self.rate_limited = 0  # the next N calls answer 429
        self.retry_after: str | None = "3"

    def handle(self, request: Request) -> Response:
        if request.headers.get("x-api-token") != TOKEN:
            return Response(401, _error("unauthorized access", 401))
        if self.rate_limited:
            self.rate_limited -= 1
            headers = {
                "x-ratelimit-limit": "80",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": "2",
            }
            if self.retry_after:
                headers["Retry-After"] = self.retry_after
            return Response(429, _error("Request over limit", 429), headers)
        route = (request.method, request.path)
        if route == ("GET", "/api/v2/persons/search"):
            return self._search(request.query)
        if route == ("POST", "/api/v2/persons"):
            return self._new_person(request.json)
        if route == ("GET", "/api/v1/leads"):
            person = int(request.query["person_id"])
            return Response(200, _ok([x for x in self.leads.values() if x["person_id"] == person]))
        if route == ("POST", "/api/v1/leads"):
            return self._new_lead(request.json)
        if (m := _LEAD.match(request.path)) and request.method == "PATCH":
            lead = self.leads.get(m.group(1))
            if lead is None:
                return Response(404, _error("Lead not found", 404))
            lead.update(request.json)
            return Response(200, _ok(lead))
        return Response(404, _error("Unknown method .", 404))

    def _search(self, query: dict[str, str]) -> Response:
        assert query.get("fields") == "email"
        term = query["term"].lower()
        items = [
            {
                "result_score": 1.0,
                "item": {
                    "id": p["id"],
                    "type": "person",
                    "name": p["name"],
                    "emails": [e["value"] for e in p["emails"]],
                },
            }
            for p in self.persons.values()
            if any(e["value"].lower() == term for e in p["emails"])
        ]
        return Response(200, _ok({"items": items}, additional_data={"next_cursor": None}))

    def _new_person(self, body: dict[str, Any]) -> Response:
        if not body.get("name"):
            return Response(400, _error("Name must be given.", 400))
        person = {
            "id": next(self._ids),
            "name": body["name"],
            "emails": body.get("emails") or [],
            "phones": body.get("phones") or [],
        }
        self.persons[person["id"]] = person
        return Response(201, _ok(person))

    def _new_lead(self, body: dict[str, Any]) -> Response:
        if not body.get("title"):
            return Response(400, _error("Title is required.", 400))
        if body.get("person_id") not in self.persons:
            return Response(400, _error("Person not found.", 400))
        lead = {"id": str(uuid.uuid4()), "is_archived": False, "label_ids": [], **body}
        self.leads[lead["id"]] = lead
        return Response(201, _ok(lead))
