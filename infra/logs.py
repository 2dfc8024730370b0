"""Structured logs: one structlog pipeline for our loggers, uvicorn's, Celery's and Litestar's.

JSON lines in production (CRM_LOG_FORMAT=json), readable lines in development. Every line
passes through the masker last, tracebacks included (they are turned into text first, in both
formats), so emails, phone numbers and secrets never reach a log, whichever library wrote the
line. Control characters are escaped, so a newline or NUL in a request path cannot forge a line.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from infra.settings import Settings

_EMAIL = re.compile(
    r"(?<![\w.%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
# International numbers (+ and 8 or more digits) and the usual national layouts (555 123 4567).
_PHONE = re.compile(r"(?<![\w+-])(?:\+\d[\d ().-]{6,}\d|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?![\w-])")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+")
# SQLAlchemy's "[parameters: ...]" line of a statement error: the values of a row, in full.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_MULTILINE_KEYS = frozenset({"exception", "stack"})  # tracebacks keep their lines
_SENSITIVE_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "cookie")
_NOT_SCANNED = frozenset(
    {
        "timestamp",
        "level",
        "logger",
        "request_id",
        "notification_id",
        "request_ids",
        "notification_ids",
    }
)
MASK = "***"


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )


def escape_control(value: str) -> str:
    r"""Control characters as escapes (a newline as `\n`, NUL as `\x00`): one log line stays
    one line, whatever a client put in a path or a header."""
    return _CONTROL.sub(_escaped, value) if _CONTROL.search(value) else value


def escape_controls(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Escape control characters in every value (tracebacks keep their newlines)."""
    for key, value in event.items():
        if isinstance(value, str):
            pattern = _CONTROL_BUT_NEWLINE if key in _MULTILINE_KEYS else _CONTROL
            if pattern.search(value):
                event[key] = pattern.sub(_escaped, value)
    return event


def mask_email(value: str) -> str:
    """`john.smith@example.com` -> `j***@example.com`."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}{MASK}@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    """Keeps the last two digits: `+1 555 123 4567` -> `***67`."""

    def hide(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return MASK + digits[-2:]

    return _PHONE.sub(hide, value)


@functools.lru_cache(maxsize=1024)
def _kind_of_key(key: str) -> str:
    """ "secret" (masked whole), "contact" (an email or phone: always masked) or "" (scanned)."""
    lowered = key.lower()
    if any(k in lowered for k in _SENSITIVE_KEYS):
        return "secret"
    return "contact" if "email" in lowered or "phone" in lowered else ""


class Masker:
    """Masks personal data and secrets in every value of a log event, nested ones included."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another one is masked whole.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if "whsec_" in value:
            value = _WHSEC.sub("whsec_" + MASK, value)
        if "[parameters: " in value:
            value = _SQL_PARAMETERS.sub(f"[parameters: {MASK}]", value)
        if "@" in value:
            value = mask_email(value)
        value = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", value)
        return mask_phone(value)

    def value(self, value: Any, key: str = "") -> Any:
        kind = _kind_of_key(key) if key else ""
        if kind == "secret":
            return MASK if value else value
        if value is None or isinstance(value, int | float):  # bool is an int: nothing to hide
            return value
        if kind == "contact" and isinstance(value, str) and value:
            masked = self.text(value)
            return masked if masked != value else value[:1] + MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return self.text(str(value))

    def __call__(self, _logger: Any, _method: str, event: EventDict) -> EventDict:
        for key, value in event.items():
            if key not in _NOT_SCANNED:
                event[key] = self.value(value, key)
        return event


def _processors(masker: Masker, json: bool) -> list[Processor]:
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Plain tracebacks: rich ones print every local (passwords, emails) unmasked.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        # Tracebacks become text before the masker, in both formats: the exception's message
        # (a driver error's row values, an email in a ValueError) is masked like the rest;
        # the console renderer prints the text as it is.
        structlog.processors.format_exc_info,
        masker,
        escape_controls,
        renderer,
    ]


def _drop_color_message(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """uvicorn adds a second, ANSI-coloured copy of each message; one is enough."""
    event.pop("color_message", None)
    return event


class RoutineTaskLines(logging.Filter):
    """Celery's per-task lines ("received", "succeeded", "Discarding revoked task" for one that
    expired) and beat's "Sending due task" lines for routine periodic tasks are DEBUG lines: a
    sweep a second would scroll a terminal away.

    The tasks log a line of their own when they did something (a delivery summary, an alert);
    failures keep their level.
    """

    _PER_TASK = ("celery.app.trace", "celery.worker.strategy")

    def __init__(self, tasks: Iterable[str]) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)

    def _routine(self, record: logging.LogRecord) -> bool:
        if record.name in self._PER_TASK:
            data = getattr(record, "data", None)  # Celery passes the task's context as `data`
            return isinstance(data, Mapping) and data.get("name") in self.tasks
        args = record.args if isinstance(record.args, tuple) else ()
        if record.name == "celery.beat" and str(record.msg).startswith("Scheduler: Sending due"):
            return bool(args) and args[-1] in self.tasks  # (entry name, task name)
        if record.name == "celery.worker.request" and str(record.msg).startswith("Discarding"):
            # A sweep that expired behind a lingering dispatch (which did its work meanwhile).
            return bool(args) and args[0] in self.tasks  # (task name, task id)
        return False


SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    _drop_color_message,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(
    settings: Settings,
    stream: Any = None,
    level: int | str | None = None,
    quiet_tasks: Iterable[str] = (),
) -> logging.Handler:
    """Route structlog and the standard library through one handler on the root logger.

    Celery's routine lines for `quiet_tasks` are lowered to DEBUG (RoutineTaskLines).
    Safe to call again (tests, several apps in one process): the previous handler is replaced.
    """
    masker = Masker(settings.secret_values)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=_processors(masker, settings.log_format == "json"),
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("crm-structlog")
    if quiet_tasks:
        handler.addFilter(RoutineTaskLines(quiet_tasks))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "crm-structlog"]:
        root.removeHandler(old)
    # Other handlers on the root (basicConfig, Celery's) would print every line a second time.
    for old in list(root.handlers):
        if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    # Libraries that bring their own handlers: let their lines reach ours instead.
    for name in ("uvicorn", "uvicorn.error", "celery", "litestar"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # The access log only when uvicorn has it on (`crm api` turns it off: a line per request
    # costs the hot path dearly); then route it through ours too.
    access = logging.getLogger("uvicorn.access")
    if access.handlers:
        access.handlers.clear()
        access.propagate = True
    return handler


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


def bind_request_id(request_id: str) -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


__all__ = [
    "Masker",
    "RoutineTaskLines",
    "bind_request_id",
    "clear_context",
    "configure_logging",
    "escape_control",
    "get_logger",
    "mask_email",
    "mask_phone",
]
