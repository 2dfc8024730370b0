"""One typed settings object, read once from the environment."""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from domain.enums import NotificationPriority, NotificationType
from domain.rules import DEFAULT_TARGET, RetryPolicy, Route
from infra.egress import IPNetwork, parse_allow


class ConfigError(ValueError):
    """A malformed setting; the message names the environment variable."""


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Target:
    """A target system: push URL and signing secrets, and/or an API key for pull mode."""

    name: str
    url: str | None = None
    secrets: tuple[Secret, ...] = ()
    events: frozenset[NotificationType] | None = None
    api_key: Secret | None = None
    kind: str = "webhook"
    min_priority: NotificationPriority | None = None
    rate_limit_per_second: float | None = None
    max_in_flight: int | None = None
    enabled: bool = True
    source: str = "env"
    # Kind-specific settings of a connector (exchange, stream, apiVersion, mapping, ...) and its
    # credentials (clientId/clientSecret, accessToken, apiToken; stored sealed, never shown).
    options: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)
    credentials: Mapping[str, Secret] = field(default_factory=dict, hash=False, compare=False)

    @property
    def route(self) -> Route:
        return Route(self.name, self.events, self.min_priority)


DEFAULT_SQLITE_URL = "sqlite:///./crm.db"
# Set beside a CRM_SECRET_KEY that `crm api --workers N` generated for one launch: good for
# CSRF tokens, useless for secrets stored in the database (gone at the next launch).
EPHEMERAL_SECRET_KEY = "CRM_SECRET_KEY_EPHEMERAL"
LOG_LEVELS = ("INFO", "DEBUG", "WARNING", "ERROR")
_TARGET_VAR = re.compile(
    r"^CRM_TARGET_([A-Z0-9_]+?)_(URL|SECRET|EVENTS|API_KEY|RATE_LIMIT|MAX_IN_FLIGHT)$"
)
_WHSEC = re.compile(r"^whsec_[A-Za-z0-9+/=]+$")


def async_url(url: str) -> str:
    """Map a plain DATABASE_URL to the async driver SQLAlchemy uses in the API."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and "+" not in url.split("://", 1)[0]:
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def sync_url(url: str) -> str:
    """Map DATABASE_URL to a synchronous driver (Alembic, Celery tasks, tests)."""
    if url.startswith(("postgres://", "postgresql://", "postgresql+psycopg_async://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url.split("://", 1)[1]
    return url


def _parse_secret(var: str, raw: str) -> tuple[Secret, ...]:
    secrets = []
    for part in raw.split():
        if not _WHSEC.match(part):
            raise ConfigError(f"{var}: each secret must look like whsec_<base64>")
        try:
            key = base64.b64decode(part.removeprefix("whsec_"), validate=True)
        except ValueError as exc:
            raise ConfigError(f"{var}: a secret is not valid base64") from exc
        if len(key) < 16:
            raise ConfigError(f"{var}: a secret must hold at least 16 bytes")
        secrets.append(Secret(part))
    if not secrets:
        raise ConfigError(f"{var}: is empty")
    return tuple(secrets)


def _parse_events(var: str, raw: str) -> frozenset[NotificationType]:
    events = set()
    for name in (p.strip().upper() for p in raw.split(",")):
        if not name:
            continue
        try:
            events.add(NotificationType(name))
        except ValueError as exc:
            known = ", ".join(t.value for t in NotificationType)
            raise ConfigError(
                f"{var}: unknown notification type {name!r} (known: {known})"
            ) from exc
    if not events:
        raise ConfigError(f"{var}: names no notification type")
    return frozenset(events)


def parse_targets(env: Mapping[str, str]) -> tuple[Target, ...]:
    """Read CRM_TARGET_<NAME>_{URL,SECRET,EVENTS,API_KEY}; fail loudly, naming the variable."""
    raw: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        m = _TARGET_VAR.match(key)
        if m and value.strip():  # an empty variable counts as unset (compose files, CI)
            raw.setdefault(m.group(1), {})[m.group(2)] = value.strip()
    targets = []
    for name, parts in sorted(raw.items()):
        prefix = f"CRM_TARGET_{name}_"
        url = parts.get("URL") or None
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"{prefix}URL: must be an http(s) URL")
        secrets: tuple[Secret, ...] = ()
        if "SECRET" in parts:
            secrets = _parse_secret(prefix + "SECRET", parts["SECRET"])
        if url is not None and not secrets:
            raise ConfigError(f"{prefix}SECRET: required when {prefix}URL is set")
        api_key = Secret(parts["API_KEY"]) if parts.get("API_KEY") else None
        if url is None and api_key is None:
            raise ConfigError(f"{prefix}URL: a target needs a URL (push) or an API_KEY (pull)")
        events = _parse_events(prefix + "EVENTS", parts["EVENTS"]) if "EVENTS" in parts else None
        named = {prefix + k: v for k, v in parts.items()}
        rate = _float(named, prefix + "RATE_LIMIT", 0.0) if "RATE_LIMIT" in parts else None
        in_flight = (
            _int(named, prefix + "MAX_IN_FLIGHT", 0, 1) if "MAX_IN_FLIGHT" in parts else None
        )
        targets.append(
            Target(
                name,
                url,
                secrets,
                events,
                api_key,
                rate_limit_per_second=rate,
                max_in_flight=in_flight,
            )
        )
    return tuple(targets)


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], var: str, default: N, minimum: N, kind: type[N]) -> N:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{var}: must be {'an integer' if kind is int else 'a number'}") from exc
    if value < minimum:
        raise ConfigError(f"{var}: must be >= {minimum}")
    return value


def _int(env: Mapping[str, str], var: str, default: int, minimum: int = 0) -> int:
    return _number(env, var, default, minimum, int)


def _float(env: Mapping[str, str], var: str, default: float, minimum: float = 0.001) -> float:
    return _number(env, var, default, minimum, float)


def _schedule(env: Mapping[str, str], var: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(var)
    if not raw:
        return default
    try:
        steps = tuple(float(p) for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ConfigError(f"{var}: must be comma-separated seconds, e.g. 5,30,120") from exc
    if not steps or min(steps) < 0:
        raise ConfigError(f"{var}: must be comma-separated non-negative seconds")
    return steps


def _choice(env: Mapping[str, str], var: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (case-insensitive), `default` when unset."""
    raw = (env.get(var) or "").strip()
    if not raw:
        return default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{var}: must be one of {', '.join(choices)}")


def _secret_url(env: Mapping[str, str], var: str) -> Secret | None:
    raw = (env.get(var) or "").strip()
    if not raw:
        return None
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ConfigError(f"{var}: must be an http(s) URL")
    return Secret(raw)


def _public_url(env: Mapping[str, str], var: str, default: str) -> str:
    raw = (env.get(var) or "").strip()
    if not raw:
        return default
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ConfigError(f"{var}: must be an http(s) URL")
    return raw.rstrip("/")


_RATE = re.compile(r"^(\d+)/(second|minute|hour|day)$")


def _rate(
    env: Mapping[str, str], var: str, default: tuple[str, int] | None
) -> tuple[str, int] | None:
    raw = (env.get(var) or "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "off", "none"):
        return None
    m = _RATE.match(raw)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"{var}: must look like 60/minute (second, minute, hour, day) or off")
    return m.group(2), int(m.group(1))


def _cidrs(env: Mapping[str, str], var: str) -> tuple[IPNetwork, ...]:
    try:
        return parse_allow(env.get(var))
    except ValueError as exc:
        raise ConfigError(f"{var}: must be comma-separated CIDRs, e.g. 127.0.0.1/32") from exc


def _redis_default(broker_url: str) -> str | None:
    """Rate limits share Redis with the broker (its db 1); no Redis, memory per process."""
    if not broker_url.startswith("redis://"):
        return None
    base = broker_url.rsplit("/", 1)[0] if broker_url.count("/") > 2 else broker_url
    return base + "/1"


# Six waves of CRM_MAX_IN_FLIGHT (64) within the default lease: fewer claims and recording
# statements per delivery (issue 14). As a default it adapts silently to a shorter lease or
# fewer slots (domain/rules.py delivery_batch_size); an explicit CRM_BATCH_SIZE cut logs.
DEFAULT_BATCH_SIZE = 384


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_SQLITE_URL
    targets: tuple[Target, ...] = ()
    broker_url: str = "redis://127.0.0.1:6379/0"
    max_body_bytes: int = 64 * 1024
    idempotency_ttl: timedelta = timedelta(hours=24)
    db_pool_size: int = 10
    # A request's time budget for the database: connect, pool checkout and statement timeouts.
    # Past it the API answers 503 with Retry-After instead of letting the caller hang.
    db_timeout: float = 5.0
    debug: bool = False
    # Signs the admin side's CSRF tokens; without CRM_SECRET_KEY, a random key per process.
    secret_key: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(32)))
    # CRM_SECRET_KEY when an operator set it (not generated per launch): the key target
    # secrets are encrypted under (infra/secretbox.py). None: secrets cannot be stored.
    encryption_key: Secret | None = None
    # How long a rotated-out signing secret keeps signing beside the new one.
    secret_overlap: timedelta = timedelta(hours=24)
    # Delivery (worker)
    celery_queue: str = "crm"
    batch_size: int = DEFAULT_BATCH_SIZE
    max_in_flight: int = 64
    lease: timedelta = timedelta(seconds=60)
    delivery_timeout: float = 10.0
    dispatch_budget: float = 10.0
    # How long a dispatch with nothing left to do waits for the next commit's wake-up (Redis)
    # before it returns; 0 returns at once (infra/wakeup_flag.py).
    dispatch_linger: float = 2.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    sweep_seconds: float = 1.0
    stats_seconds: float = 60.0
    stale_check_seconds: float = 60.0
    stale_after: timedelta = timedelta(hours=1)
    alert_webhook_url: Secret | None = None  # Slack-style URLs carry a token
    retention: timedelta = timedelta(days=30)
    # PostgreSQL: the outbox tables' time partitions, each this long (domain/outbox/partitions.py)
    partition_period: timedelta = timedelta(days=7)
    # An open quote nobody priced expires this long after its creation (a priced one at its
    # validUntil); checked by the quote-expiry beat task every `quote_expiry_check_seconds`.
    quote_expire_after: timedelta = timedelta(days=30)
    quote_expiry_check_seconds: float = 300.0
    # Observability: log format and level, the prometheus multiprocess directory, worker metrics
    log_format: str = "console"
    log_level: str = "INFO"
    metrics_dir: str | None = None
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    # Guardrails per destination (domain/destinations/guardrails.py, worker/guardrails.py)
    egress_allow: tuple[IPNetwork, ...] = ()  # CIDRs webhooks may reach despite the egress rule
    auto_disable_after: timedelta = timedelta(hours=120)  # failing with no success this long
    breaker_pause: float = 60.0  # first pause of an open circuit breaker; doubles to 24 h
    guard_redis_url: str | None = None  # shared buckets, pauses, breakers (memory without it)
    # Public endpoints
    rate_limit: tuple[str, int] | None = ("minute", 60)
    rate_limit_redis_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    # Staff cookies (session, CSRF) with the Secure flag: on behind HTTPS.
    secure_cookies: bool = False
    # Where people reach our dashboard: links in messages we send out (Slack's lead link).
    public_url: str = "http://localhost:8000"

    @property
    def broker_transport_options(self) -> dict[str, float]:
        """Short socket timeouts on Redis. The server-less embedded broker (kombu's SQLAlchemy
        transport) is polled every 50 ms instead of every second (infra/broker.py): a wake-up
        waits 25 ms on average, and an idle worker runs 20 cheap SQLite polls a second."""
        if self.broker_url.startswith("sqla+"):
            return {"polling_interval": 0.05}
        return {"socket_connect_timeout": 1, "socket_timeout": 5}

    @property
    def push_targets(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.url)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Routing table; with no target configured every type goes to BZION_HUB."""
        if not self.targets:
            return (Route(DEFAULT_TARGET),)
        return tuple(t.route for t in self.targets)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, so log lines can mask them wherever they appear."""
        found = [self.secret_key, self.alert_webhook_url]
        for t in self.targets:
            found.extend((*t.secrets, t.api_key))
        return tuple(s.get() for s in found if s is not None and s.get())

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; an unset variable keeps the field's default above
        (each default is declared once, on the field; `d` reads them back)."""
        env = os.environ if env is None else env
        d = cls()
        broker_url = env.get("CELERY_BROKER_URL") or d.broker_url
        return cls(
            database_url=env.get("DATABASE_URL") or d.database_url,
            targets=parse_targets(env),
            broker_url=broker_url,
            max_body_bytes=_int(env, "CRM_MAX_BODY_BYTES", d.max_body_bytes, 1024),
            idempotency_ttl=timedelta(
                hours=_int(env, "CRM_IDEMPOTENCY_TTL_HOURS", _hours(d.idempotency_ttl), 1)
            ),
            db_pool_size=_int(env, "CRM_DB_POOL_SIZE", d.db_pool_size, 1),
            db_timeout=_float(env, "CRM_DB_TIMEOUT", d.db_timeout, minimum=0.5),
            debug=env["CRM_DEBUG"] in ("1", "true", "yes") if env.get("CRM_DEBUG") else d.debug,
            celery_queue=env.get("CRM_CELERY_QUEUE") or d.celery_queue,
            batch_size=_int(env, "CRM_BATCH_SIZE", d.batch_size, 1),
            max_in_flight=_int(env, "CRM_MAX_IN_FLIGHT", d.max_in_flight, 1),
            lease=timedelta(seconds=_float(env, "CRM_LEASE_SECONDS", d.lease.total_seconds())),
            delivery_timeout=_float(env, "CRM_DELIVERY_TIMEOUT", d.delivery_timeout),
            dispatch_budget=_float(env, "CRM_DISPATCH_BUDGET", d.dispatch_budget),
            dispatch_linger=_float(
                env, "CRM_DISPATCH_LINGER_SECONDS", d.dispatch_linger, minimum=0.0
            ),
            retry_policy=RetryPolicy(
                schedule=_schedule(env, "CRM_RETRY_SCHEDULE", d.retry_policy.schedule),
                jitter=_float(env, "CRM_RETRY_JITTER", d.retry_policy.jitter, minimum=0.0),
                max_attempts=_int(env, "CRM_MAX_ATTEMPTS", d.retry_policy.max_attempts, 1),
            ),
            sweep_seconds=_float(env, "CRM_SWEEP_SECONDS", d.sweep_seconds),
            stats_seconds=_float(env, "CRM_STATS_SECONDS", d.stats_seconds),
            stale_check_seconds=_float(env, "CRM_STALE_CHECK_SECONDS", d.stale_check_seconds),
            stale_after=timedelta(
                seconds=_float(env, "CRM_STALE_AFTER", d.stale_after.total_seconds())
            ),
            alert_webhook_url=_secret_url(env, "CRM_ALERT_WEBHOOK_URL"),
            retention=timedelta(days=_float(env, "CRM_RETENTION_DAYS", _days(d.retention))),
            partition_period=timedelta(
                days=_int(env, "CRM_PARTITION_DAYS", d.partition_period.days, 1)
            ),
            quote_expire_after=timedelta(
                days=_float(env, "CRM_QUOTE_EXPIRE_DAYS", _days(d.quote_expire_after))
            ),
            quote_expiry_check_seconds=_float(
                env, "CRM_QUOTE_EXPIRY_CHECK_SECONDS", d.quote_expiry_check_seconds
            ),
            log_format=_choice(env, "CRM_LOG_FORMAT", ("console", "json"), d.log_format),
            log_level=_choice(env, "CRM_LOG_LEVEL", LOG_LEVELS, d.log_level),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or d.metrics_dir,
            worker_metrics_port=_int(env, "CRM_WORKER_METRICS_PORT", 0, 0) or d.worker_metrics_port,
            worker_metrics_host=env.get("CRM_WORKER_METRICS_HOST") or d.worker_metrics_host,
            egress_allow=_cidrs(env, "CRM_EGRESS_ALLOW"),
            auto_disable_after=timedelta(
                hours=_float(
                    env, "CRM_AUTO_DISABLE_AFTER_HOURS", d.auto_disable_after.total_seconds() / 3600
                )
            ),
            breaker_pause=_float(env, "CRM_BREAKER_PAUSE_SECONDS", d.breaker_pause),
            guard_redis_url=env.get("CRM_GUARD_REDIS_URL") or _redis_default(broker_url),
            rate_limit=_rate(env, "CRM_RATE_LIMIT", d.rate_limit),
            rate_limit_redis_url=env.get("CRM_RATE_LIMIT_REDIS_URL") or _redis_default(broker_url),
            public_url=_public_url(env, "CRM_PUBLIC_URL", d.public_url),
            secure_cookies=_choice(
                env, "CRM_SECURE_COOKIES", ("false", "true"), str(d.secure_cookies).lower()
            )
            == "true",
            cors_origins=tuple(
                o.strip() for o in (env.get("CRM_CORS_ORIGINS") or "").split(",") if o.strip()
            )
            or d.cors_origins,
            **({"secret_key": Secret(env["CRM_SECRET_KEY"])} if env.get("CRM_SECRET_KEY") else {}),
            encryption_key=(
                Secret(env["CRM_SECRET_KEY"])
                if env.get("CRM_SECRET_KEY") and not env.get(EPHEMERAL_SECRET_KEY)
                else None
            ),
            secret_overlap=timedelta(
                hours=_float(env, "CRM_SECRET_OVERLAP_HOURS", _hours(d.secret_overlap), minimum=0.0)
            ),
        )


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


def _days(span: timedelta) -> float:
    return span.total_seconds() / 86400
