"""The `pipedrive` connector against a fake Pipedrive API (tests/fakes/pipedrive.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.settings import Secret, Settings, Target
from tests.fakes.outgoing import lead_data, outgoing
from tests.fakes.pipedrive import TOKEN, FakePipedrive
from worker.connectors.base import OptionError, Outcome
from worker.connectors.pipedrive import CONNECTOR, PipedriveConnector

LABEL = "f0e1d2c3-0000-4000-8000-000000000001"


@pytest.fixture
def pipedrive() -> Iterator[FakePipedrive]:
    fake = FakePipedrive().start()
    yield fake
    fake.stop()


def send(fake: FakePipedrive, batch, options=None, token=TOKEN):
    target = Target(
        "PIPEDRIVE",
        fake.url,
        kind="pipedrive",
        options=options or {},
        credentials={"apiToken": Secret(token)},
    )

    async def run():
        connector = PipedriveConnector(Settings(delivery_timeout=5.0))
        try:
            return await connector.send(target, batch)
        finally:
            await connector.close()

    return asyncio.run(run())


def test_a_new_lead_creates_the_person_and_a_lead(pipedrive):
    data = lead_data(name="Ada Lovelace", email="ada@example.com")
    item = outgoing(data, "NEW_FORM_SUBMISSION")
    [sent] = send(pipedrive, [item])
    assert (sent.notification_id, sent.outcome) == (item.notification.id, Outcome.ACK)
    [person] = pipedrive.persons.values()
    assert person["name"] == "Ada Lovelace" and person["emails"][0]["value"] == "ada@example.com"
    [lead] = pipedrive.leads.values()
    assert (lead["title"], lead["person_id"], lead["origin_id"]) == (
        "Analytical Engines Ltd",
        person["id"],
        data["leadId"],
    )
    assert "created" in (sent.response_excerpt or "")


def test_an_existing_person_is_found_by_email_not_duplicated(pipedrive):
    send(pipedrive, [outgoing(lead_data(email="ada@example.com"))])
    send(pipedrive, [outgoing(lead_data(email="ada@example.com"))])  # another lead, same person
    assert len(pipedrive.persons) == 1 and len(pipedrive.leads) == 2


def test_a_status_change_updates_the_same_lead(pipedrive):
    data = lead_data()
    send(pipedrive, [outgoing(data, "NEW_FORM_SUBMISSION")])
    [lead_id] = pipedrive.leads
    options = {"statusLabels": {"CONTACTED": LABEL}}
    [sent] = send(pipedrive, [outgoing({**data, "status": "CONTACTED"}, "NEW_LEAD")], options)
    assert sent.outcome == Outcome.ACK and "updated (CONTACTED)" in (sent.response_excerpt or "")
    [patch] = pipedrive.calls("PATCH", "/api/v1/leads/")
    assert patch.path == f"/api/v1/leads/{lead_id}"
    assert list(pipedrive.leads) == [lead_id] and pipedrive.leads[lead_id]["label_ids"] == [LABEL]
    send(pipedrive, [outgoing({**data, "status": "REJECTED"}, "NEW_LEAD")])
    assert pipedrive.leads[lead_id]["is_archived"] is True


def test_a_retried_notification_does_not_make_a_second_lead(pipedrive):
    item = outgoing(lead_data(), "NEW_FORM_SUBMISSION")
    send(pipedrive, [item])
    send(pipedrive, [item])  # the first answer was lost: the dispatcher sends it again
    assert len(pipedrive.leads) == 1


def test_rate_limit_honours_retry_after_and_settles_the_batch(pipedrive):
    pipedrive.rate_limited = 1
    batch = [outgoing(lead_data(i)) for i in range(3)]
    sent = send(pipedrive, batch)
    assert [(s.outcome, s.status, s.retry_after, s.pause) for s in sent] == [
        (Outcome.RETRY, 429, 3.0, True)
    ] * 3
    assert len(pipedrive.requests) == 1
    pipedrive.rate_limited, pipedrive.retry_after = 1, None
    [sent] = send(pipedrive, batch[:1])
    assert sent.retry_after == 2.0  # x-ratelimit-reset when Retry-After is absent
    assert all(s.outcome == Outcome.ACK for s in send(pipedrive, batch))


def test_a_bad_token_fails_the_batch_for_good(pipedrive):
    sent = send(pipedrive, [outgoing(lead_data(i)) for i in range(2)], token="wrong")
    assert [(s.outcome, s.status) for s in sent] == [(Outcome.FAIL, 401)] * 2
    assert len(pipedrive.requests) == 1


def test_options_are_checked():
    creds = {"apiToken": Secret(TOKEN)}
    url = "https://api.pipedrive.com"
    for options, field in (
        ({"mapping": {"shoeSize": "person.shoe"}}, "options.mapping"),
        ({"mapping": {"phone": "deal.phone"}}, "options.mapping"),
        ({"statusLabels": {"WON": LABEL}}, "options.statusLabels"),
        ({"pipeline": 1}, "options.pipeline"),
    ):
        with pytest.raises(OptionError) as err:
            CONNECTOR.validate(url, options, creds)
        assert err.value.field == field
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate(url, {}, {})
    assert err.value.field == "credentials.apiToken"
    CONNECTOR.validate(
        url, {"mapping": {"leadScore": "lead.abc123"}, "statusLabels": {"NEW": LABEL}}, creds
    )
