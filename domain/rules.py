"""Business rules of the seed, each as data in one place.

Adding a form type is one entry in FORM_RULES (plus its FormType member).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.enums import FormType, LeadStatus, LeadType, NotificationPriority, NotificationType
from domain.errors import IllegalTransition


@dataclass(frozen=True, slots=True)
class FormRule:
    lead_type: LeadType
    score: int


FORM_RULES: Mapping[FormType, FormRule] = {
    FormType.CONTACT_US: FormRule(LeadType.CONTACT_REQUEST, 50),
    FormType.QUOTE_REQUEST: FormRule(LeadType.QUOTE_REQUEST, 80),
    FormType.PARTNERSHIP_INQUIRY: FormRule(LeadType.LEAD, 70),
}

NEWSLETTER_LEAD_SCORE = 30
MANUAL_LEAD_SCORE = 60
MANUAL_LEAD_SOURCE = "manual_import"
LEAD_SCORE_MIN, LEAD_SCORE_MAX = 0, 100

# Notification types whose priority does not depend on a score.
FIXED_PRIORITY: Mapping[NotificationType, NotificationPriority] = {
    NotificationType.QUOTE_REQUEST: NotificationPriority.HIGH,
    NotificationType.NEWSLETTER_SIGNUP: NotificationPriority.LOW,
}

# Ordering rank: HIGH > NORMAL > LOW. Never sort the strings themselves.
PRIORITY_RANK: Mapping[NotificationPriority, int] = {
    NotificationPriority.HIGH: 3,
    NotificationPriority.NORMAL: 2,
    NotificationPriority.LOW: 1,
}


def rule_for_form(form_type: FormType) -> FormRule:
    return FORM_RULES[form_type]


def priority_for(
    notification_type: NotificationType, score: int | None = None
) -> NotificationPriority:
    """Fixed priority for some types, else from the lead score (>=80 HIGH, >=40 NORMAL)."""
    fixed = FIXED_PRIORITY.get(notification_type)
    if fixed is not None:
        return fixed
    if score is None:
        return NotificationPriority.NORMAL
    if score >= 80:
        return NotificationPriority.HIGH
    if score >= 40:
        return NotificationPriority.NORMAL
    return NotificationPriority.LOW


DEFAULT_TARGET = "BZION_HUB"


@dataclass(frozen=True, slots=True)
class Route:
    """A target system and the notification types it receives (None: every type)."""

    target: str
    events: frozenset[NotificationType] | None = None

    def accepts(self, notification_type: NotificationType) -> bool:
        return self.events is None or notification_type in self.events


def targets_for(notification_type: NotificationType, routes: Iterable[Route]) -> list[str]:
    """Target systems that get a row for this type: one outbox row per target."""
    return [r.target for r in routes if r.accepts(notification_type)]


# Lead metadata keys copied from a form's metadata (the seed's "Lead Metadata").
ATTRIBUTION_KEYS = frozenset({"campaignSource", "referralSource", "landingPage", "referrer"})


def attribution(metadata: dict[str, object]) -> dict[str, object]:
    """UTM and campaign fields of a submission, kept on the lead for source attribution."""
    return {
        k: v
        for k, v in metadata.items()
        if (k in ATTRIBUTION_KEYS or k.lower().startswith("utm")) and isinstance(v, str | int)
    }


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """'Ada King Lovelace' -> ('Ada', 'King Lovelace'); one word is a first name."""
    if not name or not name.strip():
        return None, None
    first, _, rest = name.strip().partition(" ")
    return first, (rest.strip() or None)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between delivery attempts: a schedule (last step repeats) plus jitter.

    Built on tenacity's wait strategies; `delay(n)` is the wait after the n-th failed attempt.
    """

    schedule: tuple[float, ...] = (5, 30, 120, 600, 3600)
    jitter: float = 0.1  # up to +10% of each step, so retries of a burst spread out
    max_attempts: int = 28  # five steps, then hourly: about a day of tries

    def delay(self, attempt_number: int) -> float:
        from tenacity import RetryCallState, wait_chain, wait_fixed, wait_random

        steps = [wait_fixed(s) + wait_random(0, s * self.jitter) for s in self.schedule]
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt_number
        return float(wait_chain(*steps)(state))

    def exhausted(self, attempt_number: int) -> bool:
        return attempt_number >= self.max_attempts


# Lead pipeline (seed section 4): NEW -> CONTACTED -> QUALIFIED -> CONVERTED, and any open
# status -> REJECTED. CONVERTED and REJECTED are final.
LEAD_TRANSITIONS: Mapping[LeadStatus, tuple[LeadStatus, ...]] = {
    LeadStatus.NEW: (LeadStatus.CONTACTED, LeadStatus.REJECTED),
    LeadStatus.CONTACTED: (LeadStatus.QUALIFIED, LeadStatus.REJECTED),
    LeadStatus.QUALIFIED: (LeadStatus.CONVERTED, LeadStatus.REJECTED),
    LeadStatus.CONVERTED: (),
    LeadStatus.REJECTED: (),
}

# The seed's conversion funnel: each stage counts the leads that reached it or went further.
FUNNEL_STAGES: tuple[tuple[str, frozenset[LeadStatus]], ...] = (
    ("total", frozenset(LeadStatus)),
    ("contacted", frozenset({LeadStatus.CONTACTED, LeadStatus.QUALIFIED, LeadStatus.CONVERTED})),
    ("qualified", frozenset({LeadStatus.QUALIFIED, LeadStatus.CONVERTED})),
    ("converted", frozenset({LeadStatus.CONVERTED})),
)


def allowed_moves(current: LeadStatus) -> tuple[LeadStatus, ...]:
    return LEAD_TRANSITIONS[current]


def check_transition(current: LeadStatus, target: LeadStatus) -> None:
    """Raise IllegalTransition naming the allowed moves; staying put is not a move."""
    if target == current or target in LEAD_TRANSITIONS[current]:
        return
    allowed = ", ".join(s.value for s in LEAD_TRANSITIONS[current]) or "none (final status)"
    raise IllegalTransition(
        f"a {current.value} lead cannot move to {target.value}; allowed: {allowed}"
    )
