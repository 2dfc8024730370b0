"""`crm targets ...` against the real database: the registry from the command line."""

from __future__ import annotations

import json

from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from crm_cli import main
from tests.conftest import rows
from tests.e2e.harness import Receiver
from tests.integration.test_reporting_monitoring import add_notification

KEY = "k" * 40


def _crm(pg_url: str, *args: str, key: str | None = KEY) -> tuple[int, str, str]:
    env = {"DATABASE_URL": pg_url, "CRM_SECRET_KEY": key, "CRM_EGRESS_ALLOW": "127.0.0.1/32"}
    r = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_add_set_disable_enable_rotate_test_replay_list(pg_url, engine):
    hub = Receiver().start()
    try:
        code, out, err = _crm(
            pg_url, "targets", "add", "ERP", "--url", hub.url, "--events", "new_lead,quote_request",
            "--min-priority", "HIGH",
        )  # fmt: skip
        assert code == 0, err
        secret = out.strip()
        assert secret.startswith("whsec_") and "shown once" in err
        code, out, err = _crm(pg_url, "targets", "test", "ERP")
        assert code == 0, out + err
        assert json.loads(out)["status"] == 200
        Webhook(secret).verify(hub.deliveries[0].body, hub.deliveries[0].headers)

        code, out, _ = _crm(pg_url, "targets", "set", "ERP", "--events", "all", "--rate-limit", "5")
        assert code == 0 and json.loads(out)["events"] is None
        assert json.loads(out)["rateLimitPerSecond"] == 5
        code, out, _ = _crm(pg_url, "targets", "disable", "ERP", "--reason", "maintenance")
        assert json.loads(out)["disabledReason"] == "maintenance"
        code, out, _ = _crm(pg_url, "targets", "enable", "ERP")
        assert json.loads(out)["enabled"] is True

        code, out, err = _crm(pg_url, "targets", "rotate-secret", "ERP")
        assert code == 0 and out.strip().startswith("whsec_") and out.strip() != secret

        failed = add_notification(engine, status="FAILED", target="ERP")
        code, out, _ = _crm(pg_url, "targets", "replay", "ERP", "--types", "NEW_LEAD")
        assert json.loads(out) == {"queued": 1}
        (row,) = rows(engine, "SELECT status FROM crm_notifications WHERE id = :i", i=failed)
        assert row["status"] == "PENDING"

        code, out, _ = _crm(pg_url, "targets", "list")
        listed = json.loads(out)
        assert [t["name"] for t in listed] == ["ERP"] and "whsec_" not in out
    finally:
        hub.stop()


def test_bad_input_and_a_missing_key_are_clear_errors(pg_url, engine):
    code, _, err = _crm(pg_url, "targets", "add", "lower", "--url", "http://127.0.0.1:9/")
    assert code != 0 and "name" in err
    code, _, err = _crm(pg_url, "targets", "add", "ERP", "--url", "http://127.0.0.1:9/", key=None)
    assert code != 0 and "CRM_SECRET_KEY" in err
    code, _, err = _crm(pg_url, "targets", "enable", "NOPE")
    assert code != 0 and "no destination named NOPE" in err
