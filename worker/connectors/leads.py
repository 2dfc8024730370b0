"""What the CRM connectors (salesforce, hubspot, pipedrive, slack) share: the lead a notification
describes, read off its payload, and the one HTTP client per connector instance."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from domain.destinations.mappings import validate_mapping
from domain.enums import LeadStatus, NotificationType
from domain.rules import split_name
from infra.settings import Secret, Settings
from worker.connectors.base import (
    OptionError,
    Outcome,
    Outgoing,
    Sent,
    describe_error,
)

EXCERPT = 1024
# Notifications that describe a lead (they carry leadId and email); the others are not a
# CRM record of ours and are acknowledged without a request (see README "Connect your CRM").
LEAD_TYPES = frozenset(
    {
        NotificationType.NEW_FORM_SUBMISSION,
        NotificationType.NEW_LEAD,
        NotificationType.NEWSLETTER_SIGNUP,
        NotificationType.LEAD_CONVERTED,
    }
)


@dataclass(frozen=True, slots=True)
class LeadEvent:
    """One lead notification, flattened: `fields` holds our field names (mappings.py)."""

    outgoing: Outgoing
    type: str
    lead_id: str
    email: str
    fields: dict[str, Any]

    @property
    def status(self) -> LeadStatus:
        """LEAD_CONVERTED and NEW_LEAD carry the status; a new submission is NEW."""
        if self.type == NotificationType.LEAD_CONVERTED:
            return LeadStatus.CONVERTED
        try:
            return LeadStatus(str(self.fields.get("status") or LeadStatus.NEW))
        except ValueError:
            return LeadStatus.NEW

    @property
    def name_parts(self) -> tuple[str | None, str | None]:
        return split_name(self.fields.get("name"))

    def value(self, ours: str) -> Any:
        if ours.startswith("customFields."):
            return (self.fields.get("customFields") or {}).get(ours.split(".", 1)[1])
        if ours == "status":
            return self.status.value
        return self.fields.get(ours)


def lead_event(item: Outgoing) -> LeadEvent | None:
    """The lead an outgoing notification describes, None when it is not about a lead."""
    n = item.notification
    if n.type not in LEAD_TYPES:
        return None
    data: Mapping[str, Any] = n.data
    lead_id, email = data.get("leadId"), data.get("email")
    if not lead_id or not email:
        return None
    fields = dict(data)
    fields.setdefault("type", data.get("formType"))
    return LeadEvent(item, n.type, str(lead_id), str(email).strip().lower(), fields)


def skipped(item: Outgoing, kind: str) -> Sent:
    """Acknowledged without a request: the notification is no record this CRM keeps."""
    return Sent(
        item.notification.id,
        Outcome.ACK,
        0.0,
        response_excerpt=f"skipped: {item.notification.type} is not sent to {kind}",
    )


def http_client(timeout: float) -> httpx.AsyncClient:
    """Redirects never followed (they would carry our token elsewhere), explicit timeouts."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"user-agent": "crm-sync"},
    )


def required_credential(credentials: Mapping[str, Secret], name: str) -> str:
    secret = credentials.get(name)
    value = secret.get() if isinstance(secret, Secret) else None
    if not value:
        raise OptionError(f"credentials.{name}", f"credentials.{name} is required")
    return value


def check_http_url(url: str | None, field: str = "url") -> None:
    if not url or not url.startswith(("https://", "http://")):
        raise OptionError(field, f"{field} must be an http(s) URL")


def excerpt(resp: httpx.Response) -> str:
    return resp.text[:EXCERPT]


def json_body(resp: httpx.Response) -> Any:
    """The answer's JSON, None when it is not JSON (a proxy's HTML error page)."""
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return describe_error(exc)


def all_sent(
    items: list[Outgoing] | tuple[Outgoing, ...],
    outcome: Outcome,
    duration_ms: float,
    *,
    status: int | None = None,
    error: str | None = None,
    retry_after: float | None = None,
    pause: bool = False,
    disable: bool = False,
    response_excerpt: str | None = None,
) -> list[Sent]:
    """The same answer for every notification of a request (a transport error, a 429)."""
    return [
        Sent(
            i.notification.id,
            outcome,
            duration_ms,
            status,
            error,
            retry_after,
            pause,
            disable,
            response_excerpt,
        )
        for i in items
    ]


class HttpConnector:
    """What every HTTP connector has: one client per instance, its known options and
    credentials checked, and a batch split into lead notifications and the rest."""

    kind: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()
    credentials: ClassVar[tuple[str, ...]] = ()
    mapped: ClassVar[bool] = True  # has a field mapping (mappings.py)

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.client = http_client(self.settings.delivery_timeout)

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        check_http_url(url)
        for name in options:
            if name not in cls.options:
                raise OptionError(f"options.{name}", f"{cls.kind} has no option {name!r}")
        if cls.mapped:
            try:
                validate_mapping(cls.kind, options.get("mapping") or {})
            except ValueError as exc:
                raise OptionError("options.mapping", str(exc)) from exc
        for name in cls.credentials:
            required_credential(credentials, name)

    def split(self, batch: Sequence[Outgoing]) -> tuple[list[Sent], list[LeadEvent]]:
        """(the skipped notifications' answers, the lead events to send)."""
        results: list[Sent] = []
        events: list[LeadEvent] = []
        for item in batch:
            event = lead_event(item)
            if event is None:
                results.append(skipped(item, self.kind))
            else:
                events.append(event)
        return results, events

    async def close(self) -> None:
        await self.client.aclose()
