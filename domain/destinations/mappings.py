"""Field mappings of the CRM destination kinds: our lead field -> the CRM's field (issue 12).

Business data, one place: the connectors (worker/connectors/) read the defaults here and the
API checks an `options.mapping` with `validate_mapping` at create/patch. A mapping in options
overrides the default per field; mapping a field to "" (or null) leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.enums import LeadStatus

# The fields a lead notification carries (domain/leads/lifecycle.py `_lead_data`, the
# NEW_FORM_SUBMISSION payload of domain/intake/forms.py); `customFields.<key>` is also ours.
LEAD_FIELDS = frozenset(
    {
        "leadId",
        "email",
        "name",
        "companyName",
        "phone",
        "message",
        "type",
        "formType",
        "source",
        "status",
        "leadScore",
        "assignedTo",
    }
)
CUSTOM_FIELD_PREFIX = "customFields."

DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    # Lead sObject. `name` is split: the last word(s) to LastName, the first to FirstName
    # (when FirstName is not mapped otherwise). `leadId` is the external id field (option).
    "salesforce": {
        "name": "LastName",
        "email": "Email",
        "companyName": "Company",
        "phone": "Phone",
        "message": "Description",
        "source": "LeadSource",
        "status": "Status",
    },
    # Contact properties. `name` split to firstname/lastname; status -> hs_lead_status and
    # lifecyclestage through HUBSPOT_STATUS below.
    "hubspot": {
        "name": "firstname",
        "email": "email",
        "companyName": "company",
        "phone": "phone",
        "message": "message",
        "status": "hs_lead_status",
    },
    # person.* are the Pipedrive person's fields, lead.* the Pipedrive lead's.
    "pipedrive": {
        "name": "person.name",
        "email": "person.emails",
        "phone": "person.phones",
        "companyName": "lead.title",
    },
}

# Our lead status -> Salesforce's standard Lead Status picklist values.
SALESFORCE_STATUS: dict[LeadStatus, str] = {
    LeadStatus.NEW: "Open - Not Contacted",
    LeadStatus.CONTACTED: "Working - Contacted",
    LeadStatus.QUALIFIED: "Working - Contacted",
    LeadStatus.CONVERTED: "Closed - Converted",
    LeadStatus.REJECTED: "Closed - Not Converted",
}

# Our lead status -> HubSpot (hs_lead_status, lifecyclestage). HubSpot refuses to move a
# lifecycle stage backwards, so statuses that do not advance it leave it unset (None).
HUBSPOT_STATUS: dict[LeadStatus, tuple[str, str | None]] = {
    LeadStatus.NEW: ("NEW", "lead"),
    LeadStatus.CONTACTED: ("CONNECTED", None),
    LeadStatus.QUALIFIED: ("OPEN_DEAL", "salesqualifiedlead"),
    LeadStatus.CONVERTED: ("OPEN_DEAL", "customer"),
    LeadStatus.REJECTED: ("UNQUALIFIED", None),
}


def is_our_field(name: str) -> bool:
    return name in LEAD_FIELDS or (
        name.startswith(CUSTOM_FIELD_PREFIX) and len(name) > len(CUSTOM_FIELD_PREFIX)
    )


def validate_mapping(kind: str, mapping: object) -> dict[str, str | None]:
    """The checked `options.mapping` of a `kind`; ValueError naming the bad key otherwise."""
    if kind not in DEFAULT_MAPPINGS:
        raise ValueError(f"kind {kind!r} has no field mapping")
    if not isinstance(mapping, Mapping):
        raise ValueError("mapping must be an object of our field -> their field")
    checked: dict[str, str | None] = {}
    for ours, theirs in mapping.items():
        if not isinstance(ours, str) or not is_our_field(ours):
            known = ", ".join(sorted(LEAD_FIELDS))
            raise ValueError(
                f"mapping.{ours}: not a field we have (known: {known}, customFields.<key>)"
            )
        if theirs is not None and (not isinstance(theirs, str) or len(theirs) > 255):
            raise ValueError(f"mapping.{ours}: must be a field name (a string) or null")
        if kind == "pipedrive" and theirs and not theirs.startswith(("person.", "lead.")):
            raise ValueError(f"mapping.{ours}: must start with person. or lead.")
        checked[ours] = theirs or None
    return checked


def effective_mapping(kind: str, options: Mapping[str, object]) -> dict[str, str]:
    """The default mapping of `kind` with `options.mapping` laid over it (null drops one)."""
    merged: dict[str, str | None] = dict(DEFAULT_MAPPINGS[kind])
    merged.update(validate_mapping(kind, options.get("mapping") or {}))
    return {k: v for k, v in merged.items() if v}
