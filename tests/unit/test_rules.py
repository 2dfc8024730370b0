"""The seed's business rules, each asserted where it lives (no I/O)."""

import pytest

from domain.enums import FormType, LeadType, NotificationPriority, NotificationType
from domain.rules import (
    FORM_RULES,
    PRIORITY_RANK,
    Route,
    attribution,
    priority_for,
    rule_for_form,
    split_name,
    targets_for,
)


@pytest.mark.parametrize(
    ("form_type", "lead_type", "score"),
    [
        (FormType.CONTACT_US, LeadType.CONTACT_REQUEST, 50),
        (FormType.QUOTE_REQUEST, LeadType.QUOTE_REQUEST, 80),
        (FormType.PARTNERSHIP_INQUIRY, LeadType.LEAD, 70),
    ],
)
def test_form_type_maps_to_lead_type_and_score(form_type, lead_type, score):
    rule = rule_for_form(form_type)
    assert (rule.lead_type, rule.score) == (lead_type, score)


def test_every_form_type_has_a_rule():
    assert set(FORM_RULES) == set(FormType)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (100, NotificationPriority.HIGH),
        (80, NotificationPriority.HIGH),
        (79, NotificationPriority.NORMAL),
        (40, NotificationPriority.NORMAL),
        (39, NotificationPriority.LOW),
        (0, NotificationPriority.LOW),
    ],
)
def test_priority_follows_score_thresholds(score, expected):
    assert priority_for(NotificationType.NEW_FORM_SUBMISSION, score) is expected
    assert priority_for(NotificationType.NEW_LEAD, score) is expected


def test_quote_request_is_always_high_and_newsletter_always_low():
    assert priority_for(NotificationType.QUOTE_REQUEST, 0) is NotificationPriority.HIGH
    assert priority_for(NotificationType.NEWSLETTER_SIGNUP, 100) is NotificationPriority.LOW


def test_priority_rank_orders_high_normal_low_not_alphabetically():
    ranked = sorted(NotificationPriority, key=PRIORITY_RANK.__getitem__, reverse=True)
    assert ranked == [
        NotificationPriority.HIGH,
        NotificationPriority.NORMAL,
        NotificationPriority.LOW,
    ]
    assert sorted(p.value for p in NotificationPriority)[::-1] != [p.value for p in ranked]


def test_routing_gives_one_target_per_accepting_route():
    routes = [
        Route("BZION_HUB"),
        Route("SALESFORCE", frozenset({NotificationType.QUOTE_REQUEST})),
    ]
    assert targets_for(NotificationType.QUOTE_REQUEST, routes) == ["BZION_HUB", "SALESFORCE"]
    assert targets_for(NotificationType.NEWSLETTER_SIGNUP, routes) == ["BZION_HUB"]


def test_attribution_keeps_utm_and_campaign_fields_only():
    meta = {"utmSource": "google", "utm_medium": "cpc", "campaignSource": "mail", "other": "x"}
    assert attribution(meta) == {
        "utmSource": "google",
        "utm_medium": "cpc",
        "campaignSource": "mail",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada", ("Ada", None)),
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("  Ada King  Lovelace ", ("Ada", "King  Lovelace")),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_name(name, expected):
    assert split_name(name) == expected


def test_quote_moves_are_one_table_read_per_actor():
    from domain.enums import QuoteActor, QuoteStatus
    from domain.errors import IllegalTransition
    from domain.rules import OPEN_QUOTE_STATUSES, allowed_quote_moves, check_quote_transition

    assert {
        QuoteStatus.SUBMITTED,
        QuoteStatus.QUOTED,
        QuoteStatus.NEGOTIATING,
    } == OPEN_QUOTE_STATUSES
    assert allowed_quote_moves(QuoteStatus.QUOTED, QuoteActor.CUSTOMER) == (
        QuoteStatus.NEGOTIATING,
        QuoteStatus.ACCEPTED,
        QuoteStatus.REJECTED,
    )
    check_quote_transition(QuoteStatus.NEGOTIATING, QuoteStatus.QUOTED, QuoteActor.STAFF)
    with pytest.raises(IllegalTransition, match=r"allowed: QUOTED, REJECTED, EXPIRED$"):
        check_quote_transition(QuoteStatus.NEGOTIATING, QuoteStatus.ACCEPTED, QuoteActor.STAFF)
    with pytest.raises(IllegalTransition, match=r"allowed: none$"):
        check_quote_transition(QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED, QuoteActor.CUSTOMER)
