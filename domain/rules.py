"""Business rules of the seed, each as data in one place.

Adding a form type is one entry in FORM_RULES: the API accepts exactly its keys, and the
database stores any (no CHECK pins the form types), so no migration is needed. `FormType` names
the seed's three for code that means one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.enums import (
    CustomerStatus,
    FormType,
    LeadStatus,
    LeadType,
    NotificationPriority,
    NotificationType,
    QuoteActor,
    QuoteStatus,
)
from domain.errors import IllegalTransition


@dataclass(frozen=True, slots=True)
class FormRule:
    lead_type: LeadType
    score: int


FORM_RULES: Mapping[str, FormRule] = {
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


def rule_for_form(form_type: str) -> FormRule:
    return FORM_RULES[form_type]


def form_types() -> list[str]:
    """The accepted form types, read at call time (the rules are the one list)."""
    return [str(t) for t in FORM_RULES]


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
    """A target system, the notification types it receives (None: every type) and the lowest
    priority it receives (None: every priority)."""

    target: str
    events: frozenset[NotificationType] | None = None
    min_priority: NotificationPriority | None = None

    def accepts(
        self, notification_type: NotificationType, priority: NotificationPriority | None = None
    ) -> bool:
        if self.events is not None and notification_type not in self.events:
            return False
        if self.min_priority is None or priority is None:
            return True
        return PRIORITY_RANK[priority] >= PRIORITY_RANK[self.min_priority]


def targets_for(
    notification_type: NotificationType,
    routes: Iterable[Route],
    priority: NotificationPriority | None = None,
) -> list[str]:
    """Target systems that get a row for this type and priority: one outbox row per target."""
    return [r.target for r in routes if r.accepts(notification_type, priority)]


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
    retry_after_cap: float = 3600.0  # the longest a receiver's Retry-After can defer a row

    def delay(self, attempt_number: int) -> float:
        from tenacity import RetryCallState, wait_chain, wait_fixed, wait_random

        steps = [wait_fixed(s) + wait_random(0, s * self.jitter) for s in self.schedule]
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt_number
        return float(wait_chain(*steps)(state))

    def exhausted(self, attempt_number: int) -> bool:
        return attempt_number >= self.max_attempts

    def deferral(
        self, http_status: int | None, retry_after: float | None, attempt_number: int
    ) -> float | None:
        """Seconds a receiver's Retry-After defers the next attempt, or None when it does not.

        Only a 429 or 503 that names a delay counts: it is the receiver's load shedding, not a
        failure, so it does not use up an attempt (`max_attempts`). The wait is capped
        (`retry_after_cap`, so a bogus "wait a year" cannot park a row) and never shorter than
        the backoff step the row is at (`delay(attempt_number)`, `attempt_number` counting
        only counted attempts), so "Retry-After: 0" cannot make us hammer it.
        """
        if http_status not in RETRY_AFTER_STATUSES or retry_after is None:
            return None
        return max(min(retry_after, self.retry_after_cap), self.delay(attempt_number))


# Answers whose Retry-After defers the next attempt without counting it (RFC 9110 15.5.20, 15.6.4).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def delivery_batch_size(
    batch_size: int, max_in_flight: int, lease_seconds: float, timeout_seconds: float
) -> int:
    """The most rows one claim may lease: what its lease and in-flight limit can send.

    `max_in_flight` requests at a time, each at most `timeout_seconds`, make one wave; the
    lease covers floor(lease / timeout) waves. Claim more and the tail of the batch could still
    be queued when the lease ends, be claimed again by another worker and be delivered twice.
    """
    waves = max(1, int(lease_seconds // timeout_seconds)) if timeout_seconds > 0 else 1
    return max(1, min(batch_size, max_in_flight * waves))


# Lead pipeline (seed section 4): NEW -> CONTACTED -> QUALIFIED -> CONVERTED, and any open
# status -> REJECTED. CONVERTED and REJECTED are final.
LEAD_TRANSITIONS: Mapping[LeadStatus, tuple[LeadStatus, ...]] = {
    LeadStatus.NEW: (LeadStatus.CONTACTED, LeadStatus.REJECTED),
    LeadStatus.CONTACTED: (LeadStatus.QUALIFIED, LeadStatus.REJECTED),
    LeadStatus.QUALIFIED: (LeadStatus.CONVERTED, LeadStatus.REJECTED),
    LeadStatus.CONVERTED: (),
    LeadStatus.REJECTED: (),
}
# Leads still in the pipeline: what an accepted quote converts (seed: "CONVERTED: quote accepted").
OPEN_LEAD_STATUSES = frozenset(s for s, moves in LEAD_TRANSITIONS.items() if moves)

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


# Quote lifecycle (seed: quotes; "CONVERTED: quote accepted"): each status's allowed moves and
# who may make them. Staff price a SUBMITTED or NEGOTIATING quote (-> QUOTED), a customer's
# message on a QUOTED quote opens a negotiation, the customer accepts or rejects a QUOTED quote
# (staff may record either on their behalf), and the expiry task closes any open quote past its
# validity. ACCEPTED, REJECTED and EXPIRED are final.
_STAFF, _CUSTOMER, _SYSTEM = QuoteActor.STAFF, QuoteActor.CUSTOMER, QuoteActor.SYSTEM
QUOTE_TRANSITIONS: Mapping[QuoteStatus, Mapping[QuoteStatus, frozenset[QuoteActor]]] = {
    QuoteStatus.SUBMITTED: {
        QuoteStatus.QUOTED: frozenset({_STAFF}),
        QuoteStatus.REJECTED: frozenset({_STAFF}),
        QuoteStatus.EXPIRED: frozenset({_STAFF, _SYSTEM}),
    },
    QuoteStatus.QUOTED: {
        QuoteStatus.NEGOTIATING: frozenset({_CUSTOMER}),
        QuoteStatus.ACCEPTED: frozenset({_CUSTOMER, _STAFF}),
        QuoteStatus.REJECTED: frozenset({_CUSTOMER, _STAFF}),
        QuoteStatus.EXPIRED: frozenset({_STAFF, _SYSTEM}),
    },
    QuoteStatus.NEGOTIATING: {
        QuoteStatus.QUOTED: frozenset({_STAFF}),
        QuoteStatus.REJECTED: frozenset({_STAFF}),
        QuoteStatus.EXPIRED: frozenset({_STAFF, _SYSTEM}),
    },
    QuoteStatus.ACCEPTED: {},
    QuoteStatus.REJECTED: {},
    QuoteStatus.EXPIRED: {},
}
# Statuses a quote can still leave: the ones the expiry task looks at and messages may reach.
OPEN_QUOTE_STATUSES = frozenset(s for s, moves in QUOTE_TRANSITIONS.items() if moves)
# A message that moves its quote: (sender, status now) -> new status.
QUOTE_MESSAGE_MOVES: Mapping[tuple[QuoteActor, QuoteStatus], QuoteStatus] = {
    (_CUSTOMER, QuoteStatus.QUOTED): QuoteStatus.NEGOTIATING,
}


def allowed_quote_moves(current: QuoteStatus, actor: QuoteActor) -> tuple[QuoteStatus, ...]:
    return tuple(s for s, actors in QUOTE_TRANSITIONS[current].items() if actor in actors)


def check_quote_transition(current: QuoteStatus, target: QuoteStatus, actor: QuoteActor) -> None:
    """Raise IllegalTransition naming the moves this actor may make from `current`."""
    if actor in QUOTE_TRANSITIONS[current].get(target, frozenset()):
        return
    allowed = ", ".join(s.value for s in allowed_quote_moves(current, actor))
    raise IllegalTransition(
        f"a {current.value} quote cannot move to {target.value}"
        f" ({actor.value.lower()}); allowed: {allowed or 'none'}"
    )


# Customer lifecycle (seed section 4): a PROSPECT becomes ACTIVE (signup, conversion) or is
# dropped; an ACTIVE customer is deactivated; an INACTIVE one can be reactivated.
CUSTOMER_TRANSITIONS: Mapping[CustomerStatus, tuple[CustomerStatus, ...]] = {
    CustomerStatus.PROSPECT: (CustomerStatus.ACTIVE, CustomerStatus.INACTIVE),
    CustomerStatus.ACTIVE: (CustomerStatus.INACTIVE,),
    CustomerStatus.INACTIVE: (CustomerStatus.ACTIVE,),
}


def check_customer_transition(current: CustomerStatus, target: CustomerStatus) -> None:
    """Raise IllegalTransition naming the allowed moves (staying put is not a move here)."""
    allowed_now = CUSTOMER_TRANSITIONS[current]
    if target in allowed_now:
        return
    allowed = ", ".join(s.value for s in allowed_now) or "none"
    raise IllegalTransition(
        f"a {current.value} customer cannot move to {target.value}; allowed: {allowed}"
    )
