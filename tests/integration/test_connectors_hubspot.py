"""The `hubspot` connector against a fake HubSpot CRM v3 API (tests/fakes/hubspot.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.settings import Secret, Settings, Target
from tests.fakes.hubspot import TOKEN, FakeHubSpot
from tests.fakes.outgoing import lead_data, outgoing
from worker.connectors.base import OptionError, Outcome
from worker.connectors.hubspot import CONNECTOR, HubSpotConnector


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


def send(fake: FakeHubSpot, batch, options=None, token=TOKEN):
    target = Target(
        "HUBSPOT",
        fake.url,
        kind="hubspot",
        options=options or {},
        credentials={"accessToken": Secret(token)},
    )

    async def run():
        connector = HubSpotConnector(Settings(delivery_timeout=5.0))
        try:
            return await connector.send(target, batch)
        finally:
            await connector.close()

    return asyncio.run(run())


def test_a_new_lead_creates_a_contact_with_mapped_properties(hubspot):
    data = lead_data(name="Ada King Lovelace", email="Ada@Example.com")
    item = outgoing(data, "NEW_FORM_SUBMISSION")
    [sent] = send(hubspot, [item])
    assert (sent.notification_id, sent.outcome, sent.status) == (
        item.notification.id,
        Outcome.ACK,
        200,
    )
    assert "created" in (sent.response_excerpt or "")
    [request] = hubspot.calls("POST", "/crm/v3/objects/contacts/batch/upsert")
    [sent_input] = request.json["inputs"]
    assert (sent_input["idProperty"], sent_input["id"]) == ("email", "ada@example.com")
    props = hubspot.contacts["ada@example.com"]["properties"]
    assert props["firstname"] == "Ada" and props["lastname"] == "King Lovelace"
    assert props["company"] == "Analytical Engines Ltd"
    assert (props["hs_lead_status"], props["lifecyclestage"]) == ("NEW", "lead")


def test_a_status_change_updates_the_same_contact(hubspot):
    data = lead_data()
    send(hubspot, [outgoing(data, "NEW_LEAD")])
    contact_id = hubspot.contacts[data["email"]]["id"]
    [sent] = send(hubspot, [outgoing({**data, "status": "CONVERTED"}, "LEAD_CONVERTED")])
    assert sent.outcome == Outcome.ACK and "updated" in (sent.response_excerpt or "")
    contact = hubspot.contacts[data["email"]]
    assert contact["id"] == contact_id and len(hubspot.contacts) == 1
    assert (contact["properties"]["hs_lead_status"], contact["properties"]["lifecyclestage"]) == (
        "OPEN_DEAL",
        "customer",
    )


def test_150_leads_go_in_two_batches_mapped_back_by_email(hubspot):
    batch = [outgoing(lead_data(i)) for i in range(150)]
    sent = send(hubspot, batch)
    assert len(hubspot.calls("POST", "/crm/v3/")) == 2
    assert {s.notification_id for s in sent} == {o.notification.id for o in batch}
    assert all(s.outcome == Outcome.ACK for s in sent) and len(hubspot.contacts) == 150


def test_one_invalid_email_fails_alone(hubspot):
    good = [outgoing(lead_data(i)) for i in range(3)]
    bad = outgoing(lead_data(9, email="not-an-email"))
    sent = {s.notification_id: s for s in send(hubspot, [*good, bad])}
    assert sent[bad.notification.id].outcome == Outcome.FAIL
    assert "INVALID_EMAIL" in (sent[bad.notification.id].error or "")
    assert all(sent[g.notification.id].outcome == Outcome.ACK for g in good)


def test_rate_limit_honours_retry_after_and_pauses(hubspot):
    hubspot.rate_limited = 1
    batch = [outgoing(lead_data(i)) for i in range(2)]
    sent = send(hubspot, batch)
    assert [(s.outcome, s.status, s.retry_after, s.pause) for s in sent] == [
        (Outcome.RETRY, 429, 7.0, True)
    ] * 2
    assert not hubspot.contacts
    assert all(s.outcome == Outcome.ACK for s in send(hubspot, batch))  # the retry goes through


def test_a_bad_token_fails_for_good(hubspot):
    [sent] = send(hubspot, [outgoing(lead_data())], token="wrong")
    assert (sent.outcome, sent.status) == (Outcome.FAIL, 401)


def test_non_lead_notifications_are_acknowledged_without_a_request(hubspot):
    [sent] = send(hubspot, [outgoing({"customerId": "c1", "email": "x@y.z"}, "NEW_CUSTOMER")])
    assert sent.outcome == Outcome.ACK and not hubspot.requests


def test_a_mapping_override_renames_a_property(hubspot):
    data = lead_data(customFields={"budget": "10k"})
    send(
        hubspot,
        [outgoing(data)],
        {"mapping": {"customFields.budget": "budget_range", "phone": None}},
    )
    props = hubspot.contacts[data["email"]]["properties"]
    assert props["budget_range"] == "10k" and "phone" not in props


def test_options_are_checked():
    creds = {"accessToken": Secret(TOKEN)}
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate("https://api.hubapi.com", {"mapping": {"shoeSize": "shoe"}}, creds)
    assert err.value.field == "options.mapping" and "shoeSize" in err.value.message
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate("https://api.hubapi.com", {}, {})
    assert err.value.field == "credentials.accessToken"
    CONNECTOR.validate("https://api.hubapi.com", {"mapping": {"leadScore": "hs_score"}}, creds)
