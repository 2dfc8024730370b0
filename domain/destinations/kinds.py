"""What each destination kind accepts: URL scheme, options, credentials (issue 12).

One table read by the registry at create/patch (a 400 naming `url`, `options.<x>` or
`credentials.<x>`) and by each connector's `validate` (worker/connectors/<kind>.py), so the
API and the worker agree without the domain importing the worker. The connector modules own
how a kind delivers; this module owns what a destination of that kind may be configured with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from domain.destinations.mappings import validate_mapping
from domain.enums import TargetKind

Options = Mapping[str, object]
Credentials = Mapping[str, object]  # values are Secret in the worker, str at the API edge
NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")  # an exchange or stream name
SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")  # no wildcards, no spaces
STREAM = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")  # JetStream names: no dots, spaces or wildcards


class OptionError(ValueError):
    """A destination's options or credentials are unusable: a 400 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KindSpec:
    """The configuration rules of one kind."""

    schemes: tuple[str, ...]
    options: Mapping[str, Callable[[object], None]] = field(default_factory=dict)
    credentials: tuple[str, ...] = ()  # required credential names
    optional_credentials: tuple[str, ...] = ()
    secret_url: bool = False  # the URL carries a password or token: sealed, shown masked
    open_options: bool = False  # options the connector module checks itself (mapping, ...)


def _string(pattern: re.Pattern[str], what: str) -> Callable[[object], None]:
    def check(value: object) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"must be {what}")

    return check


SPECS: dict[str, KindSpec] = {
    TargetKind.WEBHOOK: KindSpec(("http", "https")),
    TargetKind.RABBITMQ: KindSpec(
        ("amqp", "amqps"),
        {"exchange": _string(NAME, "an exchange name (letters, digits, _ . -)")},
        secret_url=True,
    ),
    TargetKind.NATS: KindSpec(
        ("nats", "tls"),
        {
            "stream": _string(STREAM, "a stream name (letters, digits, _ -)"),
            "subjectPrefix": _string(SUBJECT_TOKEN, "dot-separated subject tokens, no wildcards"),
        },
        optional_credentials=("token", "user", "password"),
        secret_url=True,
    ),
    TargetKind.SLACK: KindSpec(("https", "http"), secret_url=True, open_options=True),
    TargetKind.SALESFORCE: KindSpec(
        ("https", "http"), credentials=("clientId", "clientSecret"), open_options=True
    ),
    TargetKind.HUBSPOT: KindSpec(
        ("https", "http"), credentials=("accessToken",), open_options=True
    ),
    TargetKind.PIPEDRIVE: KindSpec(("https", "http"), credentials=("apiToken",), open_options=True),
}


def spec(kind: str) -> KindSpec:
    found = SPECS.get(kind)
    if found is None:
        raise OptionError("kind", f"unknown destination kind {kind!r}")
    return found


def validate(kind: str, url: str | None, options: Options, credentials: Credentials) -> None:
    """Raise OptionError naming the field at fault; the connector's own `validate` calls this
    first, then checks what only it knows (a mapping naming a field we do not have)."""
    s = spec(kind)
    if url is not None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError as exc:
            raise OptionError("url", f"not a valid URL ({exc})") from exc
        if parts.scheme.lower() not in s.schemes or not parts.hostname:
            raise OptionError("url", f"a {kind} destination needs a {' or '.join(s.schemes)} URL")
    for name, value in options.items():
        check = s.options.get(name)
        if check is None:
            if s.open_options:
                continue
            known = ", ".join(s.options) or "none"
            raise OptionError(f"options.{name}", f"unknown option for {kind} (known: {known})")
        try:
            check(value)
        except ValueError as exc:
            raise OptionError(f"options.{name}", str(exc)) from exc
    if "mapping" in options:  # our field -> theirs: refuse a field we do not have (400)
        try:
            validate_mapping(kind, options["mapping"])
        except ValueError as exc:
            raise OptionError("options.mapping", str(exc)) from exc
    allowed = set(s.credentials) | set(s.optional_credentials)
    for name in credentials:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise OptionError(f"credentials.{name}", f"not a {kind} credential (known: {known})")
    for name in s.credentials:
        value = credentials.get(name)
        if not _present(value):
            raise OptionError(f"credentials.{name}", f"required for a {kind} destination")


def _present(value: object) -> bool:
    got = getattr(value, "get", None)  # a Secret
    if callable(got) and not isinstance(value, Mapping):
        value = got()
    return isinstance(value, str) and bool(value.strip())


def mask_url(kind: str, url: str) -> str:
    """The URL as shown: `amqp://***@host:5672/vhost`; a Slack webhook's token path hidden."""
    if not spec(kind).secret_url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.scheme in ("http", "https"):  # the path is the token (hooks.slack.com/services/...)
        return urlunsplit((parts.scheme, netloc, "/***" if parts.path.strip("/") else "", "", ""))
    if parts.username or parts.password:
        netloc = "***@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def egress_url(url: str) -> str:
    """An http URL to the same host and port, so infra/egress.py's `check_url` judges a broker's
    address by the same rule (and CRM_EGRESS_ALLOW) as a webhook's."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}" + (f":{parts.port}" if parts.port else "") + "/"
