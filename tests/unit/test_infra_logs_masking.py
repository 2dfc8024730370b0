"""Personal data and secrets never reach a log line, whichever logger wrote it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
import structlog
from sqlalchemy.exc import IntegrityError

from infra.logs import Masker, configure_logging, escape_control, mask_email, mask_phone
from infra.settings import ConfigError, Settings

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALERT_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETTOKEN"
API_KEY = "pull-key-0123456789abcdef"


def _settings(**extra: str) -> Settings:
    return Settings.from_env(
        {
            "CRM_TARGET_BZION_HUB_URL": "http://127.0.0.1:9/webhook",
            "CRM_TARGET_BZION_HUB_SECRET": WHSEC,
            "CRM_TARGET_SALESFORCE_API_KEY": API_KEY,
            "CRM_ALERT_WEBHOOK_URL": ALERT_URL,
            **extra,
        }
    )


def test_an_email_keeps_its_first_letter_and_domain():
    assert mask_email("from john.smith@example.com today") == "from j***@example.com today"


def test_a_phone_number_keeps_only_its_last_two_digits():
    assert mask_phone("call +1 555 123 4567 now") == "call ***67 now"
    assert mask_phone("or (555) 123-4567") == "or ***67"


def test_ids_dates_and_addresses_are_not_taken_for_phone_numbers():
    text = (
        "id=5f0c8a3e-1234-5678-9012-3456789abcde at 2025-01-02T10:11:12+00:00 from 192.168.100.200"
    )
    assert Masker().text(text) == text


def test_configured_secrets_are_masked_wherever_they_appear():
    masker = Masker(_settings().secret_values)
    line = masker.text(f"posting to {ALERT_URL} with {API_KEY} and {WHSEC}")
    assert ALERT_URL not in line and API_KEY not in line and WHSEC not in line
    assert line.count("***") == 3


def test_any_whsec_and_bearer_token_is_masked_even_when_not_configured():
    line = Masker().text("secret whsec_QUJDREVGR0hJSktMTU5PUA== header Bearer abc.def")
    assert line == "secret whsec_*** header Bearer ***"


def test_fields_named_like_personal_data_or_secrets_are_masked():
    event = Masker()(
        None,
        "info",
        {
            "event": "signup",
            "email": "buyer@company.com",
            "phone": "0612",
            "password": "hunter22",
            "data": {"contact": {"email": "x.y@corp.io", "apiKey": "k-123456"}},
        },
    )
    assert event["email"] == "b***@company.com"
    assert event["phone"] == "0***"
    assert event["password"] == "***"
    assert event["data"] == {"contact": {"email": "x***@corp.io", "apiKey": "***"}}


def test_standard_library_and_structlog_lines_come_out_as_masked_json():
    stream = io.StringIO()
    configure_logging(_settings(CRM_LOG_FORMAT="json"), stream=stream)
    try:
        structlog.contextvars.bind_contextvars(request_id="req-123")
        logging.getLogger("crm.test").warning("lead %s phoned +44 20 7946 0958", "ann@shop.co.uk")
        structlog.get_logger("crm.test").info("alert sent", url=ALERT_URL, to="bob@x.org")
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging(_settings())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "lead a***@shop.co.uk phoned ***58"
    assert lines[0]["level"] == "warning" and lines[0]["logger"] == "crm.test"
    assert lines[0]["request_id"] == "req-123"
    assert lines[1]["url"] == "***" and lines[1]["to"] == "b***@x.org"
    assert ALERT_URL not in stream.getvalue()


def test_console_format_is_the_default_and_readable():
    stream = io.StringIO()
    configure_logging(_settings(), stream=stream)
    try:
        logging.getLogger("crm.test").info("hello %s", "dev")
    finally:
        configure_logging(_settings())
    out = stream.getvalue()
    assert "hello dev" in out and not out.lstrip().startswith("{")


def test_log_and_metrics_settings_are_read_from_the_environment():
    s = Settings.from_env(
        {
            "CRM_LOG_FORMAT": "JSON",
            "CRM_LOG_LEVEL": "warning",
            "PROMETHEUS_MULTIPROC_DIR": "/tmp/crm-metrics",
            "CRM_WORKER_METRICS_PORT": "9808",
        }
    )
    assert (s.log_format, s.log_level, s.metrics_dir) == ("json", "WARNING", "/tmp/crm-metrics")
    assert (s.worker_metrics_port, s.worker_metrics_host) == (9808, "127.0.0.1")
    assert Settings.from_env({}).worker_metrics_port is None
    with pytest.raises(ConfigError, match="CRM_LOG_FORMAT"):
        Settings.from_env({"CRM_LOG_FORMAT": "xml"})


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_tracebacks_never_show_local_variables(fmt):
    stream = io.StringIO()
    configure_logging(_settings(CRM_LOG_FORMAT=fmt), stream=stream)

    def register(password: str = "hunter2-hunter2") -> None:
        raise ValueError("boom")

    try:
        try:
            register()
        except ValueError:
            logging.getLogger("crm.test").exception("signup of ann@shop.io failed")
    finally:
        configure_logging(_settings())
    out = stream.getvalue()
    assert "ValueError" in out and "boom" in out
    assert "hunter2-hunter2" not in out and "ann@shop.io" not in out


def _render(fmt: str, log: Callable[[], None]) -> str:
    stream = io.StringIO()
    configure_logging(_settings(CRM_LOG_FORMAT=fmt), stream=stream)
    try:
        log()
    finally:
        configure_logging(_settings())
    return stream.getvalue()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_exception_text_is_masked_in_every_format_sql_parameters_whole(fmt):
    """A driver error's message and SQLAlchemy's [parameters: ...] carry a row's values."""

    def fail_insert() -> None:
        driver_error = Exception(
            "duplicate key value violates unique constraint\n"
            "DETAIL:  Key (email)=(ann.lee@shop.io) already exists."
        )
        raise IntegrityError(
            "INSERT INTO leads (email, name, phone) VALUES (%(email)s, %(name)s, %(phone)s)",
            {"email": "ann.lee@shop.io", "name": "Ann Lee", "phone": "+44 20 7946 0958"},
            driver_error,
        )

    def log() -> None:
        try:
            fail_insert()
        except IntegrityError:
            logging.getLogger("crm.test").exception("insert failed")
        try:
            raise ValueError("no route for bob@example.org at +1 555 123 4567")
        except ValueError:
            logging.getLogger("crm.test").exception("lookup failed")

    out = _render(fmt, log)
    assert "IntegrityError" in out and "ValueError" in out  # the traceback is still there
    assert "a***@shop.io" in out and "b***@example.org" in out and "***67" in out
    for personal in ("ann.lee@shop.io", "Ann Lee", "7946 0958", "bob@example.org", "123 4567"):
        assert personal not in out, personal


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_control_characters_in_a_logged_path_cannot_forge_a_line(fmt):
    path = "/api/x\n2026-01-01 [info] admin signed in\x00\r\u2028"
    out = _render(
        fmt, lambda: logging.getLogger("crm.test").warning("unhandled error on GET %s", path)
    )
    (line,) = out.splitlines()  # str.splitlines also splits on \r and \u2028
    message = json.loads(line)["event"] if fmt == "json" else line
    assert "/api/x\\n2026-01-01 [info] admin signed in\\x00\\r\\u2028" in message


def test_escape_control_leaves_printable_text_alone():
    assert escape_control("/api/forms/submit?a=b é ü") == "/api/forms/submit?a=b é ü"
    assert escape_control("a\tb\x1b[31m") == "a\\tb\\x1b[31m"
