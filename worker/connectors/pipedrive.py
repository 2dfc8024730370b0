"""`pipedrive`: a lead notification becomes a Pipedrive person and lead (issue 12, item 6).

Pipedrive has no batch upsert, so each notification is a short exchange (API token in the
`x-api-token` header, https://developers.pipedrive.com/docs/api/v1):
1. the person, found by email (`GET /api/v2/persons/search?term=&fields=email&exact_match=true`)
   or created (`POST /api/v2/persons` with `name`, `emails`, `phones`);
2. the Pipedrive lead of our lead, found among the person's leads (`GET /api/v1/leads?person_id=`)
   by its `origin_id`, which we set to our lead id when creating it (`POST /api/v1/leads` with
   `title`, `person_id`, `origin_id`): no table of ours keeps their ids, and a retry after a lost
   answer finds the lead it already made instead of making a second one;
3. created when absent; updated (`PATCH /api/v1/leads/{id}`: title, labels of `statusLabels`,
   archived when REJECTED) when a notification carries a status change.
A 429 waits for Retry-After (else `x-ratelimit-reset`) and settles the rest of the batch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from domain.destinations.mappings import effective_mapping
from domain.enums import LeadStatus, NotificationType
from infra.settings import Secret, Target
from worker.connectors.base import OptionError, Outcome, Outgoing, Sent, elapsed_ms
from worker.connectors.leads import (
    HttpConnector,
    LeadEvent,
    all_sent,
    json_body,
    lead_event,
    skipped,
    transport_error,
)
from worker.transport import parse_retry_after

RATE_WAIT = 2.0  # a 429 naming no wait (Pipedrive's token-based limit refills every 2 s)
STATUS_EVENTS = frozenset({NotificationType.NEW_LEAD, NotificationType.LEAD_CONVERTED})


class Halt(Exception):
    """An answer about the whole destination (429, bad token, Pipedrive down): the rest of the
    batch is settled the same way without further requests."""

    def __init__(
        self, outcome: Outcome, status: int | None, error: str, wait: float | None = None
    ) -> None:
        super().__init__(error)
        self.outcome, self.status, self.error, self.wait = outcome, status, error, wait


class Refused(Exception):
    """Pipedrive refused this notification's request (400/404/422): it fails alone."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def split_mapping(mapping: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(our field -> person field, our field -> lead field) from `person.x` / `lead.x` names."""
    person = {k: v.split(".", 1)[1] for k, v in mapping.items() if v.startswith("person.")}
    lead = {k: v.split(".", 1)[1] for k, v in mapping.items() if v.startswith("lead.")}
    return person, lead


class PipedriveConnector(HttpConnector):
    kind: ClassVar[str] = "pipedrive"
    options: ClassVar[frozenset[str]] = frozenset({"mapping", "statusLabels"})
    credentials: ClassVar[tuple[str, ...]] = ("apiToken",)

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        super().validate(url, options, credentials)
        labels = options.get("statusLabels") or {}
        if not isinstance(labels, Mapping) or any(
            k not in LeadStatus.__members__ or not isinstance(v, str) for k, v in labels.items()
        ):
            raise OptionError(
                "options.statusLabels", "statusLabels maps a lead status (NEW...) to a label id"
            )

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        results: list[Sent] = []
        items = list(batch)
        for index, item in enumerate(items):
            event = lead_event(item)
            if event is None:
                results.append(skipped(item, self.kind))
                continue
            started = time.perf_counter()
            n = item.notification
            try:
                note = await self._deliver(target, event)
                results.append(
                    Sent(n.id, Outcome.ACK, elapsed_ms(started), 200, response_excerpt=note)
                )
            except Refused as exc:
                results.append(Sent(n.id, Outcome.FAIL, elapsed_ms(started), exc.status, exc.error))
            except Halt as exc:
                pause = exc.status == 429
                results.extend(
                    all_sent(
                        items[index:],
                        exc.outcome,
                        elapsed_ms(started),
                        status=exc.status,
                        error=exc.error,
                        retry_after=exc.wait,
                        pause=pause,
                    )
                )
                break
        return results

    async def _call(self, target: Target, method: str, path: str, **kwargs: Any) -> Any:
        url = (target.url or "").rstrip("/") + path
        headers = {"x-api-token": target.credentials["apiToken"].get()}
        try:
            resp = await self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Halt(Outcome.RETRY, None, f"pipedrive: {transport_error(exc)}") from exc
        answer = json_body(resp)
        status = resp.status_code
        if 200 <= status < 300 and isinstance(answer, dict):
            return answer.get("data")
        said = answer.get("error") if isinstance(answer, dict) else None
        error = f"pipedrive: HTTP {status} {method} {path.split('?')[0]}" + (
            f": {said}" if said else ""
        )
        if status == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if wait is None:
                wait = parse_retry_after(resp.headers.get("x-ratelimit-reset")) or RATE_WAIT
            raise Halt(Outcome.RETRY, status, error, wait)
        if status >= 500:
            raise Halt(Outcome.RETRY, status, error)
        if status in (401, 402, 403):  # the token or the plan: nothing in this batch can pass
            raise Halt(Outcome.FAIL, status, error)
        raise Refused(status, error)

    async def _person(self, target: Target, event: LeadEvent, fields: Mapping[str, str]) -> int:
        found = await self._call(
            target,
            "GET",
            "/api/v2/persons/search",
            params={"term": event.email, "fields": "email", "exact_match": "true"},
        )
        items = (found or {}).get("items") or []
        if items:
            return int(items[0]["item"]["id"])
        body: dict[str, Any] = {}
        for ours, theirs in fields.items():
            value = event.value(ours)
            if value in (None, ""):
                continue
            if theirs in ("emails", "phones"):
                body[theirs] = [{"value": str(value), "primary": True, "label": "work"}]
            else:
                body[theirs] = value
        body.setdefault("name", event.fields.get("name") or event.email)
        body.setdefault("emails", [{"value": event.email, "primary": True, "label": "work"}])
        created = await self._call(target, "POST", "/api/v2/persons", json=body)
        return int(created["id"])

    def _lead_body(
        self, target: Target, event: LeadEvent, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for ours, theirs in fields.items():
            if (value := event.value(ours)) not in (None, ""):
                body[theirs] = value
        body.setdefault("title", event.fields.get("name") or event.email)
        body["title"] = str(body["title"])
        labels = target.options.get("statusLabels") or {}
        if isinstance(labels, Mapping) and event.status.value in labels:
            body["label_ids"] = [labels[event.status.value]]
        return body

    async def _deliver(self, target: Target, event: LeadEvent) -> str:
        person_fields, lead_fields = split_mapping(effective_mapping(self.kind, target.options))
        person_id = await self._person(target, event, person_fields)
        leads = await self._call(
            target,
            "GET",
            "/api/v1/leads",
            params={"person_id": person_id, "archived_status": "all", "limit": 500},
        )
        mine = next((x for x in leads or [] if x.get("origin_id") == event.lead_id), None)
        body = self._lead_body(target, event, lead_fields)
        if mine is None:
            created = await self._call(
                target,
                "POST",
                "/api/v1/leads",
                json={**body, "person_id": person_id, "origin_id": event.lead_id},
            )
            return f"person {person_id}, lead {created['id']} created"
        if event.type not in STATUS_EVENTS:
            return f"person {person_id}, lead {mine['id']} already there"
        if event.status == LeadStatus.REJECTED:
            body["is_archived"] = True
        await self._call(target, "PATCH", f"/api/v1/leads/{mine['id']}", json=body)
        return f"person {person_id}, lead {mine['id']} updated ({event.status.value})"


CONNECTOR = PipedriveConnector
