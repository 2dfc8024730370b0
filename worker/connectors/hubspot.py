"""`hubspot`: lead notifications upserted as HubSpot contacts by email (issue 12, item 5).

CRM v3 batch upsert (https://developers.hubspot.com/docs/api/crm/contacts):
`POST {url}/crm/v3/objects/contacts/batch/upsert` with a private app's token as Bearer,
`{"inputs": [{"idProperty": "email", "id": <email>, "properties": {...}}]}`, at most 100
inputs. 200 `{"status": "COMPLETE", "results": [{"id", "properties", "new"}]}`, 207 the same plus
`errors`; 400 `{"status": "error", "category": "VALIDATION_ERROR", "message"}` refuses the
whole batch, so a refused batch is sent again one contact a request to fail only the bad one;
429 (`errorType: RATE_LIMIT`) waits for Retry-After (10 s, HubSpot's window, when absent).
The destination's url is the API base (https://api.hubapi.com), so tests point it at a fake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from domain.destinations.mappings import HUBSPOT_STATUS, effective_mapping
from infra.settings import Target
from worker.connectors.base import Outcome, Outgoing, Sent, elapsed_ms
from worker.connectors.leads import (
    HttpConnector,
    LeadEvent,
    all_sent,
    excerpt,
    json_body,
    transport_error,
)
from worker.transport import parse_retry_after

BATCH = 100  # HubSpot's limit per batch request
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
RATE_WINDOW = 10.0  # the ten-secondly rolling limit, when a 429 names no Retry-After


def contact_properties(event: LeadEvent, mapping: Mapping[str, str]) -> dict[str, str]:
    """HubSpot property values are strings; `name` fills firstname + lastname, `status`
    hs_lead_status and (when it advances) lifecyclestage, as mappings.HUBSPOT_STATUS says."""
    props: dict[str, str] = {}
    for ours, theirs in mapping.items():
        value = event.value(ours)
        if ours == "name" and theirs == "firstname":
            first, last = event.name_parts
            props.update({k: v for k, v in (("firstname", first), ("lastname", last)) if v})
        elif ours == "status" and theirs == "hs_lead_status":
            lead_status, stage = HUBSPOT_STATUS[event.status]
            props["hs_lead_status"] = lead_status
            if stage:
                props["lifecyclestage"] = stage
        elif value not in (None, ""):
            props[theirs] = str(value)
    props["email"] = event.email
    return props


class HubSpotConnector(HttpConnector):
    kind: ClassVar[str] = "hubspot"
    options: ClassVar[frozenset[str]] = frozenset({"mapping"})
    credentials: ClassVar[tuple[str, ...]] = ("accessToken",)

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        results, events = self.split(batch)
        mapping = effective_mapping(self.kind, target.options)
        token = target.credentials["accessToken"].get()
        for start in range(0, len(events), BATCH):
            results.extend(
                await self._upsert(target, token, mapping, events[start : start + BATCH])
            )
        return results

    async def _upsert(
        self, target: Target, token: str, mapping: Mapping[str, str], events: list[LeadEvent]
    ) -> list[Sent]:
        # One input per email: HubSpot refuses a batch naming a contact twice; the later
        # notification's values win, and every notification of that email shares the answer.
        by_email: dict[str, dict[str, str]] = {}
        for event in events:
            by_email.setdefault(event.email, {}).update(contact_properties(event, mapping))
        inputs = [
            {"idProperty": "email", "id": email, "properties": props}
            for email, props in by_email.items()
        ]
        items = [e.outgoing for e in events]
        started = time.perf_counter()
        try:
            resp = await self.client.post(
                (target.url or "").rstrip("/") + UPSERT,
                json={"inputs": inputs},
                headers={"authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            return all_sent(items, Outcome.RETRY, elapsed_ms(started), error=transport_error(exc))
        took, status, answer = elapsed_ms(started), resp.status_code, json_body(resp)
        message = (answer or {}).get("message") if isinstance(answer, dict) else None
        error = f"hubspot: HTTP {status}" + (f" {message}" if message else "")
        if status == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After")) or RATE_WINDOW
            return all_sent(
                items,
                Outcome.RETRY,
                took,
                status=status,
                error=error,
                retry_after=wait,
                pause=True,
                response_excerpt=excerpt(resp),
            )
        if status >= 500:
            return all_sent(
                items,
                Outcome.RETRY,
                took,
                status=status,
                error=error,
                response_excerpt=excerpt(resp),
            )
        if status == 400 and len(by_email) > 1:  # find the bad contact: one request each
            sent: list[Sent] = []
            for email in by_email:
                sent.extend(
                    await self._upsert(
                        target, token, mapping, [e for e in events if e.email == email]
                    )
                )
            return sent
        if not 200 <= status < 300:
            return all_sent(
                items,
                Outcome.FAIL,
                took,
                status=status,
                error=error,
                response_excerpt=excerpt(resp),
            )
        return self._per_contact(events, answer if isinstance(answer, dict) else {}, status, took)

    def _per_contact(
        self, events: list[LeadEvent], answer: dict[str, Any], status: int, took: float
    ) -> list[Sent]:
        """Results carry the contact's properties (email among them): matched back by email;
        a contact named in `errors` fails with HubSpot's message."""
        done = {
            str((r.get("properties") or {}).get("email", "")).lower(): r
            for r in answer.get("results") or []
        }
        errors = answer.get("errors") or []
        sent = []
        for event in events:
            n = event.outgoing.notification
            result = done.get(event.email)
            if result is not None:
                note = f"contact {result.get('id')} " + (
                    "created" if result.get("new") else "updated"
                )
                sent.append(Sent(n.id, Outcome.ACK, took, status, response_excerpt=note))
                continue
            mine = [e for e in errors if event.email in str(e.get("context") or "").lower()]
            reason = (mine or errors or [{"message": "not in HubSpot's results"}])[0]
            error = f"hubspot: {reason.get('category', '')} {reason.get('message', '')}".strip()
            sent.append(Sent(n.id, Outcome.FAIL, took, status, error[:500]))
        return sent


CONNECTOR = HubSpotConnector
