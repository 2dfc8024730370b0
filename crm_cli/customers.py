"""`crm customers repair-links` and `crm users deactivate`: customer accounts and their links."""

from __future__ import annotations

from typing import Any

import click

from crm_cli import load_settings
from crm_cli.admin import CLI_ACTOR, users
from domain.customers.lifecycle import deactivate_user
from domain.customers.links import repair_links
from domain.destinations.directory import Directory
from domain.errors import DomainError
from infra.db import Database, with_database


def register(main: click.Group) -> None:
    main.add_command(customers)


@click.group()
def customers() -> None:
    """Customers and their user accounts."""


@customers.command("repair-links")
def repair_links_command() -> None:
    """Link (or create) the Customer of every customer account that has none, and say which."""
    settings = load_settings()

    async def work(db: Database) -> Any:
        async with db.transaction() as conn:
            return await repair_links(conn, (await Directory(settings).refresh(conn)).routes)

    repaired = with_database(settings, work)
    for r in repaired:
        click.echo(f"{r.action} {r.email} -> customer {r.customer_id} (user {r.user_id})")
    click.echo(f"{len(repaired)} customer link(s) repaired")


@users.command("deactivate")
@click.option("--email", required=True, help="the account to deactivate (staff or customer)")
@click.option("--actor", default=CLI_ACTOR, show_default=True, help="who the audit trail names")
def deactivate_command(email: str, actor: str) -> None:
    """Deactivate an account: its sessions end at once; a linked customer goes INACTIVE."""
    settings = load_settings()

    async def work(db: Database) -> Any:
        async with db.transaction() as conn:
            return await deactivate_user(
                conn, email, actor, (await Directory(settings).refresh(conn)).routes
            )

    try:
        done = with_database(settings, work)
    except DomainError as exc:
        raise click.ClickException(f"{exc.field or 'error'}: {exc.message}") from exc
    customer = f", customer {done.customer_id} INACTIVE" if done.customer_deactivated else ""
    click.echo(f"user {done.email} deactivated{customer}")
