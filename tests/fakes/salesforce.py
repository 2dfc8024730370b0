"""A Salesforce org as its REST API documents it: the OAuth 2.0 client credentials token
endpoint and the sObject Collections upsert of Leads by external id, with session expiry
(401 INVALID_SESSION_ID after N calls) and the daily limit (403 REQUEST_LIMIT_EXCEEDED) on demand.

https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
"""

from __future__ import annotations

import re
from itertools import count
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

CLIENT_ID = "3MVG9fake.client.id"
CLIENT_SECRET = "fake-client-secret"
LEAD_FIELDS = {
    "FirstName",
    "LastName",
    "Email",
    "Company",
    "Phone",
    "Description",
    "LeadSource",
    "Status",
    "Rating",
    "Title",
    "CrmSync_Id__c",
}
_UPSERT = re.compile(r"^/services/data/(v\d+\.\d)/composite/sobjects/Lead/(\w+)$")


class FakeSalesforce(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self._tokens = count(1)
        self.valid_token: str | None = None
        self.calls_per_token: int | None = None  # the session expires after this many calls
        self._calls_on_token = 0
        self.limit_exceeded = False
        self.leads: dict[str, dict[str, Any]] = {}  # external id -> record
        self._ids = count(1)

    def handle(self, request: Request) -> Response:
        if request.path == "/services/oauth2/token" and request.method == "POST":
            return self._token(request.form)
        m = _UPSERT.match(request.path)
        if m is None or request.method != "PATCH":
            return Response(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token != self.valid_token or (
            self.calls_per_token is not None and self._calls_on_token >= self.calls_per_token
        ):
            return Response(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        self._calls_on_token += 1
        if self.limit_exceeded:
            return Response(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
            )
        return self._upsert(m.group(2), request.json)

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            return Response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return Response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        self.valid_token = f"00Dfake!token{next(self._tokens)}"
        self._calls_on_token = 0
        return Response(
            200,
            {
                "access_token": self.valid_token,
                "instance_url": self.url,
                "id": f"{self.url}/id/00D000000000001/005000000000001",
                "token_type": "Bearer",
                "issued_at": "1700000000000",
                "signature": "c2lnbmF0dXJl",
            },
        )

    @property
    def tokens_issued(self) -> int:
        return len(self.calls("POST", "/services/oauth2/token"))

    def upserts(self) -> list[Request]:
        return self.calls("PATCH", "/services/data/")

    def _upsert(self, external_field: str, body: dict[str, Any]) -> Response:
        records = body.get("records") or []
        if len(records) > 200:
            return Response(
                400,
                [
                    {
                        "message": "EXCEEDED_ID_LIMIT: record limit reached. cannot submit more than 200 records into this call",
                        "errorCode": "EXCEEDED_ID_LIMIT",
                    }
                ],
            )
        if external_field not in LEAD_FIELDS:
            return Response(
                404,
                [
                    {
                        "message": f"Provided external ID field does not exist or is not accessible: {external_field}",
                        "errorCode": "NOT_FOUND",
                    }
                ],
            )
        for record in records:
            for name in record:
                if name != "attributes" and name not in LEAD_FIELDS:
                    return Response(
                        400,
                        [
                            {
                                "message": f"No such column '{name}' on sobject of type Lead",
                                "errorCode": "INVALID_FIELD",
                            }
                        ],
                    )
        return Response(200, [self._one(external_field, r, body.get("allOrNone")) for r in records])

    def _one(self, external_field: str, record: dict[str, Any], all_or_none: Any) -> dict[str, Any]:
        assert all_or_none is False and record["attributes"]["type"] == "Lead"
        email = record.get("Email")
        if email is not None and "@" not in str(email):
            return {
                "success": False,
                "errors": [
                    {
                        "statusCode": "INVALID_EMAIL_ADDRESS",
                        "message": f"Email: invalid email address: {email}",
                        "fields": ["Email"],
                    }
                ],
            }
        key = record.get(external_field)
        existing = self.leads.get(key)
        fields = {k: v for k, v in record.items() if k != "attributes"}
        if existing is None:
            missing = [f for f in ("LastName", "Company") if not fields.get(f)]
            if missing:
                return {
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "REQUIRED_FIELD_MISSING",
                            "message": f"Required fields are missing: [{', '.join(missing)}]",
                            "fields": missing,
                        }
                    ],
                }
            existing = self.leads[key] = {"Id": f"00Q{next(self._ids):015d}"}
            created = True
        else:
            created = False
        existing.update(fields)
        return {"id": existing["Id"], "success": True, "errors": [], "created": created}
