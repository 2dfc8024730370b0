"""The `slack` connector against a fake Slack incoming webhook (tests/fakes/slack.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from infra.settings import Settings, Target
from tests.fakes.outgoing import lead_data, outgoing
from tests.fakes.slack import FakeSlack
from worker.connectors.base import OptionError, Outcome
from worker.connectors.slack import CONNECTOR, SlackConnector

PUBLIC = "https://crm.example.com"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def send(fake: FakeSlack, batch):
    async def run():
        connector = SlackConnector(Settings(public_url=PUBLIC, delivery_timeout=5.0))
        try:
            return await connector.send(Target("SLACK", fake.webhook_url, kind="slack"), batch)
        finally:
            await connector.close()

    return asyncio.run(run())


def test_a_high_lead_posts_blocks_with_the_dashboard_link(slack):
    data = lead_data(name="Grace Hopper", companyName="Navy Labs", email="grace@navy.example")
    item = outgoing(data, "NEW_LEAD", "HIGH")
    [sent] = send(slack, [item])
    assert (sent.notification_id, sent.outcome, sent.status) == (
        item.notification.id,
        Outcome.ACK,
        200,
    )
    [message] = slack.messages()
    text = json.dumps(message["blocks"])
    link = f"{PUBLIC}/admin/leads/{data['leadId']}"
    assert f"<{link}|" in text
    for shown in (
        "Grace Hopper",
        "Navy Labs",
        "grace@navy.example",
        "80",
        "QUOTE_REQUEST",
        "web_form",
    ):
        assert shown in text
    assert message["text"].startswith("New lead: Grace Hopper (Navy Labs)")


def test_a_form_submission_shows_its_form_type_and_source(slack):
    data = lead_data()
    data.pop("type"), data.pop("source")
    data.update(formType="quote_request", formSubmissionId="f-1")
    send(slack, [outgoing(data, "NEW_FORM_SUBMISSION")])
    text = json.dumps(slack.messages()[0]["blocks"])
    assert "quote_request" in text and "web_form" in text


def test_channel_not_found_fails_for_good_and_settles_the_batch(slack):
    slack.error = "channel_not_found"
    batch = [outgoing(lead_data(i)) for i in range(3)]
    sent = send(slack, batch)
    assert [s.outcome for s in sent] == [Outcome.FAIL] * 3
    assert {s.notification_id for s in sent} == {o.notification.id for o in batch}
    assert "channel_not_found" in (sent[0].error or "") and sent[0].status == 404
    assert not any(s.disable for s in sent)
    assert len(slack.messages()) == 1  # the webhook is gone: the others are not posted


def test_an_archived_channel_disables_the_destination(slack):
    slack.error = "channel_is_archived"
    sent = send(slack, [outgoing(lead_data(i)) for i in range(2)])
    assert [(s.outcome, s.disable) for s in sent] == [(Outcome.FAIL, True)] * 2
    assert sent[0].status == 410


def test_a_bad_payload_fails_only_that_message(slack):
    slack.error = "invalid_payload"
    sent = send(slack, [outgoing(lead_data(i)) for i in range(2)])
    assert [s.outcome for s in sent] == [Outcome.FAIL, Outcome.FAIL]
    assert len(slack.messages()) == 2  # not about the webhook: each message tried


def test_rate_limit_retries_after_slacks_wait_and_pauses(slack):
    slack.rate_limited_for = 42
    sent = send(slack, [outgoing(lead_data(i)) for i in range(3)])
    assert [(s.outcome, s.retry_after, s.pause) for s in sent] == [(Outcome.RETRY, 42.0, True)] * 3
    assert len(slack.messages()) == 1


def test_unknown_option_and_bad_url_are_refused():
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate("https://hooks.slack.com/services/x", {"channel": "#x"}, {})
    assert err.value.field == "options.channel"
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate("ftp://x", {}, {})
    assert err.value.field == "url"
    CONNECTOR.validate("https://hooks.slack.com/services/x", {"minPriority": "HIGH"}, {})


def test_the_dashboard_link_comes_from_crm_public_url():
    assert Settings.from_env({"CRM_PUBLIC_URL": "https://crm.example.com/"}).public_url == PUBLIC
    assert Settings.from_env({}).public_url == "http://localhost:8000"
