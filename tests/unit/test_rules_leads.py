"""Lead pipeline rules: allowed status moves, the funnel stages, keyset cursors."""

import itertools

import pytest

from domain.enums import LeadStatus as S
from domain.errors import IllegalTransition
from domain.rules import FUNNEL_STAGES, allowed_moves, check_transition
from infra.keyset import BadCursor, decode_cursor, encode_cursor

ALLOWED = {
    (S.NEW, S.CONTACTED),
    (S.CONTACTED, S.QUALIFIED),
    (S.QUALIFIED, S.CONVERTED),
    (S.NEW, S.REJECTED),
    (S.CONTACTED, S.REJECTED),
    (S.QUALIFIED, S.REJECTED),
}
MOVES = [(a, b) for a, b in itertools.product(S, S) if a != b]


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_pipeline_moves_are_allowed(current, target):
    check_transition(current, target)
    assert target in allowed_moves(current)


@pytest.mark.parametrize(("current", "target"), [m for m in MOVES if m not in ALLOWED])
def test_every_other_move_is_refused_naming_the_allowed_ones(current, target):
    with pytest.raises(IllegalTransition) as exc:
        check_transition(current, target)
    message = exc.value.message
    assert f"{current.value} lead cannot move to {target.value}" in message
    for allowed in allowed_moves(current):
        assert allowed.value in message
    if not allowed_moves(current):
        assert "none (final status)" in message
    assert exc.value.field == "status"


def test_converted_and_rejected_are_final():
    assert allowed_moves(S.CONVERTED) == () and allowed_moves(S.REJECTED) == ()


def test_staying_in_the_same_status_is_not_a_move():
    for status in S:
        check_transition(status, status)


def test_funnel_stages_follow_the_seed():
    stages = dict(FUNNEL_STAGES)
    assert list(stages) == ["total", "contacted", "qualified", "converted"]
    assert stages["total"] == set(S)
    assert stages["contacted"] == {S.CONTACTED, S.QUALIFIED, S.CONVERTED}
    assert stages["qualified"] == {S.QUALIFIED, S.CONVERTED}
    assert stages["converted"] == {S.CONVERTED}


def test_cursor_round_trips_and_refuses_another_list():
    cursor = encode_cursor("leads:score", [80, "2026-01-02T03:04:05.123456+00:00", "abc"])
    assert decode_cursor(cursor, "leads:score", [int, str, str]) == [
        80,
        "2026-01-02T03:04:05.123456+00:00",
        "abc",
    ]
    with pytest.raises(BadCursor):
        decode_cursor(cursor, "leads:newest", [int, str, str])
    with pytest.raises(BadCursor):
        decode_cursor("not a cursor!", "leads:score", [int, str, str])
