"""The `salesforce` connector against a fake org (tests/fakes/salesforce.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.settings import Secret, Settings, Target
from tests.fakes.outgoing import lead_data, outgoing
from tests.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from worker.connectors.base import OptionError, Outcome
from worker.connectors.salesforce import CONNECTOR, SalesforceConnector


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce().start()
    yield fake
    fake.stop()


def target(org: FakeSalesforce, options=None, secret=CLIENT_SECRET) -> Target:
    creds = {"clientId": Secret(CLIENT_ID), "clientSecret": Secret(secret)}
    return Target(
        "SALESFORCE", org.url, kind="salesforce", options=options or {}, credentials=creds
    )


def send_all(org: FakeSalesforce, *batches, options=None, secret=CLIENT_SECRET):
    """Each batch through one connector instance, as one worker process sends them."""

    async def run():
        connector = SalesforceConnector(Settings(delivery_timeout=5.0))
        try:
            return [await connector.send(target(org, options, secret), b) for b in batches]
        finally:
            await connector.close()

    return asyncio.run(run())


def test_token_flow_then_the_session_is_reused(org):
    first, second = send_all(org, [outgoing(lead_data(1))], [outgoing(lead_data(2))])
    assert [s.outcome for s in first + second] == [Outcome.ACK, Outcome.ACK]
    [token_call] = org.calls("POST", "/services/oauth2/token")
    assert token_call.form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert all(r.headers["authorization"] == f"Bearer {org.valid_token}" for r in org.upserts())
    assert org.tokens_issued == 1


def test_250_leads_are_upserted_in_two_requests(org):
    batch = [outgoing(lead_data(i)) for i in range(250)]
    [sent] = send_all(org, batch)
    sizes = [len(r.json["records"]) for r in org.upserts()]
    assert sizes == [200, 50]
    assert org.upserts()[0].path == "/services/data/v62.0/composite/sobjects/Lead/CrmSync_Id__c"
    assert all(r.json["allOrNone"] is False for r in org.upserts())
    assert {s.notification_id for s in sent} == {o.notification.id for o in batch}
    assert all(s.outcome == Outcome.ACK and "created" in (s.response_excerpt or "") for s in sent)
    lead = org.leads[batch[7].notification.data["leadId"]]
    assert (lead["FirstName"], lead["LastName"], lead["Email"]) == (
        "Ada",
        "Lovelace7",
        "ada7@example.com",
    )
    assert (lead["Company"], lead["Status"]) == ("Analytical Engines Ltd", "Open - Not Contacted")


def test_one_record_with_a_field_error_fails_alone_with_salesforces_message(org):
    good = [outgoing(lead_data(i)) for i in range(3)]
    bad = outgoing(lead_data(9, email="not-an-email"))
    [sent] = send_all(org, [good[0], bad, *good[1:]])
    by_id = {s.notification_id: s for s in sent}
    assert by_id[bad.notification.id].outcome == Outcome.FAIL
    assert (
        by_id[bad.notification.id].error
        == "salesforce: INVALID_EMAIL_ADDRESS Email: invalid email address: not-an-email [Email]"
    )
    assert all(by_id[g.notification.id].outcome == Outcome.ACK for g in good)
    assert len(org.upserts()) == 1


def test_an_expired_session_is_refreshed_once(org):
    org.calls_per_token = 1
    first, second = send_all(org, [outgoing(lead_data(1))], [outgoing(lead_data(2))])
    assert [s.outcome for s in first + second] == [Outcome.ACK, Outcome.ACK]
    assert org.tokens_issued == 2 and len(org.upserts()) == 3  # ok, 401, ok with the new token


def test_a_session_refused_after_its_refresh_fails_without_looping(org):
    org.calls_per_token = 0
    [[sent]] = send_all(org, [outgoing(lead_data())])
    assert (sent.outcome, sent.status) == (Outcome.FAIL, 401)
    assert "INVALID_SESSION_ID" in (sent.error or "")
    assert org.tokens_issued == 2 and len(org.upserts()) == 2


def test_request_limit_exceeded_pauses_the_destination(org):
    org.limit_exceeded = True
    [sent] = send_all(org, [outgoing(lead_data(i)) for i in range(2)])
    assert all(s.outcome == Outcome.RETRY and s.pause and s.retry_after for s in sent)
    assert "REQUEST_LIMIT_EXCEEDED" in (sent[0].error or "")


def test_required_fields_get_the_documented_fallbacks(org):
    data = lead_data(name=None, companyName=None, email="grace@navy.example")
    send_all(org, [outgoing(data, "NEW_FORM_SUBMISSION")])
    lead = org.leads[data["leadId"]]
    assert (lead["LastName"], lead["Company"]) == ("grace", "[not provided]")


def test_conversion_updates_the_leads_status(org):
    data = lead_data()
    _, [converted] = send_all(
        org, [outgoing(data)], [outgoing({**data, "status": "CONVERTED"}, "LEAD_CONVERTED")]
    )
    assert converted.outcome == Outcome.ACK and "updated" in (converted.response_excerpt or "")
    assert org.leads[data["leadId"]]["Status"] == "Closed - Converted" and len(org.leads) == 1


def test_bad_client_credentials_fail_every_notification(org):
    [sent] = send_all(org, [outgoing(lead_data(i)) for i in range(2)], secret="wrong")
    assert all(s.outcome == Outcome.FAIL and "invalid_client" in (s.error or "") for s in sent)
    assert not org.upserts()


def test_a_mapping_to_a_field_the_org_lacks_fails_with_its_message(org):
    [[sent]] = send_all(
        org, [outgoing(lead_data())], options={"mapping": {"leadScore": "Score__c"}}
    )
    assert sent.outcome == Outcome.FAIL and "No such column 'Score__c'" in (sent.error or "")


def test_options_are_checked():
    creds = {"clientId": Secret(CLIENT_ID), "clientSecret": Secret(CLIENT_SECRET)}
    url = "https://acme.my.salesforce.com"
    for options, field in (
        ({"mapping": {"favouriteColour": "Colour__c"}}, "options.mapping"),
        ({"apiVersion": "62"}, "options.apiVersion"),
        ({"externalIdField": "bad field"}, "options.externalIdField"),
        ({"exchange": "x"}, "options.exchange"),
    ):
        with pytest.raises(OptionError) as err:
            CONNECTOR.validate(url, options, creds)
        assert err.value.field == field
    with pytest.raises(OptionError) as err:
        CONNECTOR.validate(url, {}, {"clientId": Secret(CLIENT_ID)})
    assert err.value.field == "credentials.clientSecret"
    CONNECTOR.validate(url, {"apiVersion": "v61.0", "mapping": {"leadScore": "Rating"}}, creds)
