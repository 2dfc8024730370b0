"""HubSpot CRM v3 contacts batch upsert (https://developers.hubspot.com/docs/api/crm/contacts),
as documented: Bearer private-app token, up to 100 inputs by `idProperty: email`, 200 with
`results` (each `id`, `properties`, `new`), 400 VALIDATION_ERROR for the whole batch, 401
INVALID_AUTHENTICATION, 429 RATE_LIMIT with Retry-After on demand."""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeServer, Request, Response

TOKEN = "pat-na1-00000000-0000-0000-0000-000000000000"


def _error(category: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "c0ffee",
        "category": category,
        **extra,
    }


class FakeHubSpot(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict[str, Any]] = {}  # email -> {"id", "properties"}
        self.rate_limited: int = 0  # the next N calls answer 429
        self.retry_after = "7"

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response(
                401, _error("INVALID_AUTHENTICATION", "Authentication credentials not found.")
            )
        if self.rate_limited:
            self.rate_limited -= 1
            body = {
                **_error("RATE_LIMIT", "You have reached your ten_secondly_rolling limit."),
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
            }
            return Response(429, body, {"Retry-After": self.retry_after})
        if request.method == "POST" and request.path == "/crm/v3/objects/contacts/batch/upsert":
            return self._upsert(request.json["inputs"])
        return Response(404, _error("OBJECT_NOT_FOUND", "not found"))

    def _upsert(self, inputs: list[dict[str, Any]]) -> Response:
        if len(inputs) > 100:
            return Response(
                400, _error("VALIDATION_ERROR", "Batch input size exceeds the limit of 100")
            )
        ids = [i["id"] for i in inputs]
        if len(set(ids)) != len(ids):
            return Response(400, _error("VALIDATION_ERROR", "Duplicate IDs found in batch input"))
        for i in inputs:
            if i.get("idProperty") != "email" or "@" not in i["id"]:
                return Response(
                    400,
                    _error(
                        "VALIDATION_ERROR",
                        f'Property values were not valid: [{{"isValid":false,"message":"Email address {i["id"]} is invalid","error":"INVALID_EMAIL","name":"email"}}]',
                    ),
                )
        results = []
        for i in inputs:
            new = i["id"] not in self.contacts
            contact = self.contacts.setdefault(
                i["id"], {"id": str(1000 + len(self.contacts)), "properties": {}}
            )
            contact["properties"].update(i["properties"], email=i["id"])
            results.append(
                {
                    "id": contact["id"],
                    "properties": dict(contact["properties"]),
                    "createdAt": "2025-01-01T00:00:00Z",
                    "updatedAt": "2025-01-01T00:00:00Z",
                    "archived": False,
                    "new": new,
                }
            )
        return Response(
            200,
            {
                "status": "COMPLETE",
                "results": results[::-1],
                "startedAt": "2025-01-01T00:00:00Z",
                "completedAt": "2025-01-01T00:00:01Z",
            },
        )
