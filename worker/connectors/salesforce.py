"""`salesforce`: lead notifications upserted as Salesforce Leads by external id (issue 12, item 4).

- Token: OAuth 2.0 client credentials flow, `POST {url}/services/oauth2/token` (form:
  grant_type=client_credentials, client_id, client_secret) -> `{access_token, instance_url}`;
  kept per destination, fetched again once when a call answers 401 `INVALID_SESSION_ID`.
- Upsert: sObject Collections, `PATCH {instance_url}/services/data/{apiVersion}/composite/
  sobjects/Lead/{externalIdField}` with `{"allOrNone": false, "records": [...]}`, at most 200
  records; the answer is one `{id, success, created, errors: [{statusCode, message, fields}]}`
  per record, in the records' order, so each notification gets its own record's result.
- Required fields: `LastName` falls back to the name's last word(s), else the email's local
  part; `Company` to the company name, else "[not provided]".
- Errors of the whole call are a list `[{"errorCode", "message"}]`: `REQUEST_LIMIT_EXCEEDED`
  (the org's daily API limit) pauses the destination (5 min, or the answer's Retry-After);
  other 4xx fail the batch for good.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from domain.destinations.mappings import SALESFORCE_STATUS, effective_mapping
from infra.settings import Secret, Settings, Target
from worker.connectors.base import OptionError, Outcome, Outgoing, Sent, elapsed_ms
from worker.connectors.leads import (
    HttpConnector,
    LeadEvent,
    all_sent,
    excerpt,
    json_body,
    transport_error,
)
from worker.transport import parse_retry_after

BATCH = 200  # sObject Collections' limit per request
DEFAULT_API_VERSION = "v62.0"
DEFAULT_EXTERNAL_ID = "CrmSync_Id__c"
NO_COMPANY = "[not provided]"
# Salesforce names no Retry-After for the daily limit: the destination waits this long, unless
# the answer carries one (a gateway in front of the org, a test's fake), which is honoured.
LIMIT_PAUSE = 300.0
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"}
)
_VERSION = re.compile(r"^v\d{2,3}\.\d$")
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


@dataclass(frozen=True, slots=True)
class Session:
    access_token: str
    instance_url: str


class TokenRefused(Exception):
    """The token endpoint said no (bad client id/secret): every notification fails."""

    def __init__(self, status: int | None, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.status, self.message, self.outcome = status, message, outcome


def lead_record(event: LeadEvent, mapping: Mapping[str, str], external_id: str) -> dict[str, Any]:
    """One Lead record: mapped fields, the documented fallbacks, Status from SALESFORCE_STATUS."""
    record: dict[str, Any] = {"attributes": {"type": "Lead"}}
    for ours, theirs in mapping.items():
        if ours == "name" and theirs == "LastName":
            first, last = event.name_parts
            if last:
                record.setdefault("FirstName", first)
                record["LastName"] = last
            elif first:
                record["LastName"] = first
        elif ours == "status" and theirs == "Status":
            record["Status"] = SALESFORCE_STATUS[event.status]
        elif (value := event.value(ours)) not in (None, ""):
            record[theirs] = value
    if not record.get("LastName"):
        record["LastName"] = event.email.split("@", 1)[0]
    if not record.get("Company"):
        record["Company"] = event.fields.get("companyName") or NO_COMPANY
    record[external_id] = event.lead_id
    return record


def _call_error(answer: Any) -> tuple[str, str]:
    """(errorCode, message) of a whole-call error: `[{"errorCode", "message"}]`."""
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        return str(answer[0].get("errorCode", "")), str(answer[0].get("message", ""))
    if isinstance(answer, dict):  # the token endpoint's {"error", "error_description"}
        return str(answer.get("error", "")), str(answer.get("error_description", ""))
    return "", ""


class SalesforceConnector(HttpConnector):
    kind: ClassVar[str] = "salesforce"
    options: ClassVar[frozenset[str]] = frozenset({"apiVersion", "externalIdField", "mapping"})
    credentials: ClassVar[tuple[str, ...]] = ("clientId", "clientSecret")

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self.sessions: dict[str, Session] = {}  # by destination name

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        super().validate(url, options, credentials)
        version = options.get("apiVersion", DEFAULT_API_VERSION)
        if not isinstance(version, str) or not _VERSION.match(version):
            raise OptionError("options.apiVersion", "apiVersion must look like v62.0")
        field = options.get("externalIdField", DEFAULT_EXTERNAL_ID)
        if not isinstance(field, str) or not _FIELD.match(field):
            raise OptionError("options.externalIdField", "externalIdField must be a field name")

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        results, events = self.split(batch)
        for start in range(0, len(events), BATCH):
            results.extend(await self._upsert(target, events[start : start + BATCH]))
        return results

    async def _session(self, target: Target, fresh: bool = False) -> Session:
        session = self.sessions.get(target.name)
        if session is not None and not fresh:
            return session
        creds = target.credentials
        try:
            resp = await self.client.post(
                (target.url or "").rstrip("/") + "/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": creds["clientId"].get(),
                    "client_secret": creds["clientSecret"].get(),
                },
            )
        except httpx.HTTPError as exc:
            raise TokenRefused(
                None, f"salesforce token: {transport_error(exc)}", Outcome.RETRY
            ) from exc
        answer = json_body(resp)
        if resp.status_code != 200 or not isinstance(answer, dict) or "access_token" not in answer:
            code, message = _call_error(answer)
            outcome = Outcome.RETRY if resp.status_code >= 500 else Outcome.FAIL
            text = f"salesforce token: HTTP {resp.status_code} {code} {message}".strip()
            raise TokenRefused(resp.status_code, text, outcome)
        session = Session(answer["access_token"], answer.get("instance_url") or target.url or "")
        self.sessions[target.name] = session
        return session

    async def _upsert(self, target: Target, events: list[LeadEvent]) -> list[Sent]:
        options = target.options
        version = str(options.get("apiVersion") or DEFAULT_API_VERSION)
        external_id = str(options.get("externalIdField") or DEFAULT_EXTERNAL_ID)
        mapping = effective_mapping(self.kind, options)
        # One record per lead: a collection naming an external id twice is refused; the
        # later notification's values win and both share the record's result.
        records: dict[str, dict[str, Any]] = {}
        for event in events:
            records.setdefault(event.lead_id, {}).update(lead_record(event, mapping, external_id))
        order = list(records)
        items = [e.outgoing for e in events]
        body = {"allOrNone": False, "records": [records[k] for k in order]}
        started = time.perf_counter()
        try:
            resp = None
            for fresh in (False, True):  # an expired session is renewed once
                session = await self._session(target, fresh)
                resp = await self.client.patch(
                    f"{session.instance_url.rstrip('/')}/services/data/{version}"
                    f"/composite/sobjects/Lead/{external_id}",
                    json=body,
                    headers={"authorization": f"Bearer {session.access_token}"},
                )
                if resp.status_code != 401:
                    break
        except TokenRefused as exc:
            return all_sent(
                items, exc.outcome, elapsed_ms(started), status=exc.status, error=exc.message
            )
        except httpx.HTTPError as exc:
            return all_sent(items, Outcome.RETRY, elapsed_ms(started), error=transport_error(exc))
        assert resp is not None
        took, status, answer = elapsed_ms(started), resp.status_code, json_body(resp)
        if status != 200 or not isinstance(answer, list) or len(answer) != len(order):
            return self._call_failed(items, resp, answer, took)
        by_lead = dict(zip(order, answer, strict=True))
        return [self._record_sent(e, by_lead[e.lead_id], took) for e in events]

    def _call_failed(
        self, items: list[Outgoing], resp: httpx.Response, answer: Any, took: float
    ) -> list[Sent]:
        status = resp.status_code
        code, message = _call_error(answer)
        error = f"salesforce: HTTP {status} {code} {message}".strip()
        if code == "REQUEST_LIMIT_EXCEEDED":
            return all_sent(
                items,
                Outcome.RETRY,
                took,
                status=status,
                error=error,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")) or LIMIT_PAUSE,
                pause=True,
                response_excerpt=excerpt(resp),
            )
        outcome = Outcome.RETRY if status >= 500 or status == 200 else Outcome.FAIL
        return all_sent(
            items, outcome, took, status=status, error=error, response_excerpt=excerpt(resp)
        )

    @staticmethod
    def _record_sent(event: LeadEvent, result: Any, took: float) -> Sent:
        n = event.outgoing.notification
        if isinstance(result, dict) and result.get("success"):
            note = f"Lead {result.get('id')} " + ("created" if result.get("created") else "updated")
            return Sent(n.id, Outcome.ACK, took, 200, response_excerpt=note)
        errors = result.get("errors") if isinstance(result, dict) else None
        first = (errors or [{}])[0]
        code = str(first.get("statusCode", ""))
        fields = ", ".join(first.get("fields") or [])
        error = f"salesforce: {code} {first.get('message', '')}" + (
            f" [{fields}]" if fields else ""
        )
        outcome = Outcome.RETRY if code in TRANSIENT_CODES else Outcome.FAIL
        return Sent(n.id, outcome, took, 200, error.strip()[:500])


CONNECTOR = SalesforceConnector
