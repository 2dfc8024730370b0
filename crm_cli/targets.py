"""`crm targets ...`: the destinations registry from the command line (as /api/admin/targets).

Running processes follow a change within a few seconds; a secret is printed once, to stdout,
by `add` and `rotate-secret`, and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import msgspec

from crm_cli import load_settings
from domain.destinations.health import target_health
from domain.destinations.ping import ping_target
from domain.destinations.registry import (
    CreateTarget,
    UpdateTarget,
    create_target,
    list_targets,
    rotate_secret,
    set_enabled,
    update_target,
)
from domain.destinations.replay import ReplayFilter, ReplayStatus, replay_target
from domain.enums import NotificationPriority, TargetKind
from domain.errors import DomainError
from infra.db import Database, with_database

T = TypeVar("T")
PRIORITIES = click.Choice([p.value for p in NotificationPriority])


def register(main: click.Group) -> None:
    main.add_command(targets)


def _run(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """One use case in one transaction; a domain or validation error ends the command."""
    settings = load_settings()

    async def go(db: Database) -> T:
        async with db.transaction() as conn:
            return await work(conn, settings)

    try:
        return with_database(settings, go)
    except DomainError as exc:
        raise click.ClickException(f"{exc.field or 'error'}: {exc.message}") from exc


def _struct(struct: type[T], **values: Any) -> T:
    """A command struct validated like the API's body (same names, same limits)."""
    try:
        return msgspec.convert(values, struct)
    except msgspec.ValidationError as exc:
        raise click.ClickException(str(exc)) from exc


def _echo(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2))


def _events(raw: str | None) -> list[str] | None:
    return None if raw is None else [e.strip().upper() for e in raw.split(",") if e.strip()]


@click.group()
def targets() -> None:
    """Destinations: env ones (read-only) and the registry's."""


@targets.command("list")
def list_command() -> None:
    """Every destination, as JSON (never a secret)."""
    _echo(_run(list_targets))


def _pairs(raw: tuple[str, ...], what: str, as_json: bool) -> dict[str, Any]:
    """KEY=VALUE options; an option's VALUE is JSON when it parses (`mapping={...}`)."""
    found: dict[str, Any] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=what)
        if as_json:
            try:
                found[key] = json.loads(value)
            except ValueError:
                found[key] = value
        else:
            found[key] = value
    return found


OPTION = click.option(
    "--option", "options", multiple=True, help="KEY=VALUE kind option (JSON value allowed)"
)
CREDENTIAL = click.option(
    "--credential", "credentials", multiple=True, help="KEY=VALUE credential (stored sealed)"
)


@targets.command("add")
@click.argument("name")
@click.option("--url", required=True)
@click.option("--kind", type=click.Choice([k.value for k in TargetKind]), default="webhook")
@OPTION
@CREDENTIAL
@click.option("--events", help="comma-separated notification types (default: all)")
@click.option("--min-priority", type=PRIORITIES)
@click.option("--rate-limit", type=float, help="requests per second")
@click.option("--max-in-flight", type=int)
def add_command(
    name: str,
    url: str,
    kind: str,
    options: tuple[str, ...],
    credentials: tuple[str, ...],
    events: str | None,
    min_priority: str | None,
    rate_limit: float | None,
    max_in_flight: int | None,
) -> None:
    """Create destination NAME; prints its signing secret once."""
    cmd = _struct(
        CreateTarget,
        name=name,
        url=url,
        kind=kind,
        options=_pairs(options, "--option", True),
        credentials=_pairs(credentials, "--credential", False),
        events=_events(events),
        minPriority=min_priority,
        rateLimitPerSecond=rate_limit,
        maxInFlight=max_in_flight,
    )
    created = _run(lambda conn, s: create_target(conn, s, cmd))
    click.echo(f"destination {created.name} created; its signing secret (shown once):", err=True)
    click.echo(created.secret)


@targets.command("set")
@click.argument("name")
@click.option("--url")
@click.option("--events", help="comma-separated types; 'all' for every type")
@click.option("--min-priority", help="LOW, NORMAL, HIGH, or 'none'")
@click.option("--rate-limit", help="requests per second, or 'none'")
@click.option("--max-in-flight", help="a number, or 'none'")
@OPTION
@CREDENTIAL
def set_command(
    name: str,
    url: str | None,
    options: tuple[str, ...],
    credentials: tuple[str, ...],
    events: str | None,
    min_priority: str | None,
    rate_limit: str | None,
    max_in_flight: str | None,
) -> None:
    """Change destination NAME (only the options given; --option or --credential replace
    all of the destination's options or credentials)."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = url
    if options:
        changes["options"] = _pairs(options, "--option", True)
    if credentials:
        changes["credentials"] = _pairs(credentials, "--credential", False)
    if events is not None:
        changes["events"] = None if events.lower() == "all" else _events(events)
    for key, raw, kind in (
        ("minPriority", min_priority, str.upper),
        ("rateLimitPerSecond", rate_limit, float),
        ("maxInFlight", max_in_flight, int),
    ):
        if raw is not None:
            try:
                changes[key] = None if raw.lower() == "none" else kind(raw)  # type: ignore[operator]
            except ValueError as exc:
                raise click.BadParameter(f"{raw!r}", param_hint=key) from exc
    cmd = _struct(UpdateTarget, **changes)
    _echo(_run(lambda conn, s: update_target(conn, s, name, cmd)))


@targets.command("rotate-secret")
@click.argument("name")
def rotate_command(name: str) -> None:
    """New signing secret for NAME (printed once); the old one signs beside it a while."""
    rotated = _run(lambda conn, s: rotate_secret(conn, s, name))
    until = rotated.previous_secret_expires_at.isoformat()
    click.echo(f"new secret for {name} (shown once); the old one signs until {until}:", err=True)
    click.echo(rotated.secret)


@targets.command("enable")
@click.argument("name")
def enable_command(name: str) -> None:
    """Resume delivery to NAME."""
    _echo(_run(lambda conn, s: set_enabled(conn, s, name, True)))


@targets.command("disable")
@click.argument("name")
@click.option("--reason", required=True)
def disable_command(name: str, reason: str) -> None:
    """Pause delivery to NAME (its notifications wait)."""
    _echo(_run(lambda conn, s: set_enabled(conn, s, name, False, reason)))


@targets.command("test")
@click.argument("name")
def test_command(name: str) -> None:
    """Send NAME a signed PING now; exits 1 unless it answers 2xx."""
    result = _run(lambda conn, s: ping_target(conn, s, name))
    _echo(result)
    if result.error is not None:
        raise SystemExit(1)


@targets.command("replay")
@click.argument("name")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ReplayStatus]),
    default="FAILED",
    show_default=True,
)
@click.option("--types", help="comma-separated notification types")
@click.option("--since", type=click.DateTime(), help="created at or after (UTC)")
@click.option("--until", type=click.DateTime(), help="created before (UTC)")
def replay_command(
    name: str, status: str, types: str | None, since: datetime | None, until: datetime | None
) -> None:
    """Send NAME's notifications again (same webhook-id), filtered."""
    f = _struct(
        ReplayFilter,
        status=status,
        types=_events(types),
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )
    _echo(_run(lambda conn, s: replay_target(conn, s, name, f)))


@targets.command("health")
@click.argument("name")
def health_command(name: str) -> None:
    """NAME's backlog, last hour's deliveries and latency."""
    _echo(_run(lambda conn, s: target_health(conn, s, name)))
