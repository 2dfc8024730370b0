"""The claim size: the default adapts to the lease and slots silently, an explicit one cut is logged."""

import dataclasses
import logging
from datetime import timedelta

import pytest

from infra.settings import DEFAULT_BATCH_SIZE, Settings
from worker.dispatcher import Dispatcher

# Nothing connects: a dispatcher opens no connection until it drains.
SHORT_LEASE = Settings(
    database_url="postgresql://nobody@127.0.0.1:1/none",
    lease=timedelta(seconds=10),
    delivery_timeout=2.0,
)  # 64 slots x floor(10 / 2) waves = 320 rows at most per claim


def _made(settings: Settings) -> int:
    d = Dispatcher(settings)
    try:
        return d.batch_size
    finally:
        d.close()


def test_the_default_claims_what_the_lease_allows_without_a_warning(caplog):
    assert DEFAULT_BATCH_SIZE > 320
    with caplog.at_level(logging.WARNING, logger="crm.dispatch"):
        assert _made(SHORT_LEASE) == 320
        assert _made(Settings(database_url=SHORT_LEASE.database_url)) == DEFAULT_BATCH_SIZE
    assert caplog.records == []


@pytest.mark.parametrize("explicit", [321, 500])
def test_an_explicit_batch_size_the_lease_cannot_send_is_cut_and_logged(caplog, explicit):
    with caplog.at_level(logging.WARNING, logger="crm.dispatch"):
        assert _made(dataclasses.replace(SHORT_LEASE, batch_size=explicit)) == 320
    assert "claims of 320 rows leased 10 s" in caplog.text
    assert f"CRM_BATCH_SIZE {explicit}" in caplog.text
