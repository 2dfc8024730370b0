"""Target configuration: parsed once, malformed values name their variable, secrets never print."""

import pytest

from domain.enums import NotificationType
from domain.rules import Route
from infra.settings import ConfigError, Settings, async_url, sync_url

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_no_target_routes_everything_to_bzion_hub():
    assert Settings.from_env({}).routes == (Route("BZION_HUB"),)


def test_targets_are_read_from_the_environment():
    s = Settings.from_env(
        {
            "CRM_TARGET_BZION_HUB_URL": "http://127.0.0.1:9000/hook",
            "CRM_TARGET_BZION_HUB_SECRET": f"{SECRET} whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkh",
            "CRM_TARGET_SALESFORCE_URL": "https://sf.example.com/in",
            "CRM_TARGET_SALESFORCE_SECRET": SECRET,
            "CRM_TARGET_SALESFORCE_EVENTS": "quote_request, NEW_LEAD",
            "CRM_TARGET_PIPEDRIVE_API_KEY": "k-123",
        }
    )
    hub, pipedrive, sf = s.targets
    assert hub.name == "BZION_HUB" and len(hub.secrets) == 2 and hub.events is None
    assert pipedrive.url is None and pipedrive.api_key is not None
    assert sf.events == {NotificationType.QUOTE_REQUEST, NotificationType.NEW_LEAD}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CRM_TARGET_HUB_URL": "ftp://x", "CRM_TARGET_HUB_SECRET": SECRET}, "CRM_TARGET_HUB_URL"),
        ({"CRM_TARGET_HUB_URL": "http://x"}, "CRM_TARGET_HUB_SECRET"),
        (
            {"CRM_TARGET_HUB_URL": "http://x", "CRM_TARGET_HUB_SECRET": "nope"},
            "CRM_TARGET_HUB_SECRET",
        ),
        (
            {
                "CRM_TARGET_HUB_URL": "http://x",
                "CRM_TARGET_HUB_SECRET": SECRET,
                "CRM_TARGET_HUB_EVENTS": "BOGUS",
            },
            "CRM_TARGET_HUB_EVENTS",
        ),
        ({"CRM_TARGET_HUB_EVENTS": "NEW_LEAD"}, "CRM_TARGET_HUB_URL"),
        ({"CRM_MAX_BODY_BYTES": "lots"}, "CRM_MAX_BODY_BYTES"),
        ({"CRM_PARTITION_DAYS": "0"}, "CRM_PARTITION_DAYS"),
    ],
)
def test_malformed_configuration_names_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_outbox_partitions_are_weekly_unless_configured():
    assert Settings.from_env({}).partition_period.days == 7
    assert Settings.from_env({"CRM_PARTITION_DAYS": "1"}).partition_period.days == 1


def test_secrets_never_print():
    s = Settings.from_env(
        {
            "CRM_TARGET_HUB_URL": "http://x",
            "CRM_TARGET_HUB_SECRET": SECRET,
            "CRM_TARGET_HUB_API_KEY": "key-xyz",
        }
    )
    assert SECRET not in repr(s) and "key-xyz" not in repr(s) and SECRET not in str(s.targets)


def test_database_urls_map_to_drivers():
    assert async_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert async_url("sqlite:///./crm.db") == "sqlite+aiosqlite:///./crm.db"
    assert sync_url("sqlite+aiosqlite:///x.db") == "sqlite:///x.db"
    assert sync_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_empty_target_variables_count_as_unset():
    assert (
        Settings.from_env(
            {"CRM_TARGET_BZION_HUB_URL": "", "CRM_TARGET_BZION_HUB_SECRET": ""}
        ).targets
        == ()
    )


def test_an_empty_environment_gives_the_fields_own_defaults():
    """Defaults are declared once, on the Settings fields; from_env reads them back."""
    from dataclasses import fields

    from_env, declared = Settings.from_env({}), Settings()
    # random per process; from the broker URL
    derived = {"secret_key", "rate_limit_redis_url", "guard_redis_url"}
    for f in fields(Settings):
        if f.name not in derived:
            assert getattr(from_env, f.name) == getattr(declared, f.name), f.name
    assert from_env.rate_limit_redis_url == "redis://127.0.0.1:6379/1"
