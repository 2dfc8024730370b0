"""`crm users ...` and `crm leads ...`: staff accounts and CSV import/export of leads."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from crm_cli import load_settings
from domain.accounts.users import create_admin
from domain.destinations.directory import Directory
from domain.enums import LeadStatus, LeadType
from domain.errors import DomainError
from domain.leads.csv_copy import copy_import_leads, export_csv
from domain.leads.csv_io import BadFile, export_leads, import_leads, read_csv
from domain.leads.queries import LeadFilters, LeadSort
from infra.db import Database, with_database

T = TypeVar("T")
CLI_ACTOR = "cli"


def register(main: click.Group) -> None:
    main.add_command(users)
    main.add_command(leads)


@click.group()
def users() -> None:
    """Staff accounts."""


@users.command("create-admin")
@click.option("--email", required=True, help="the admin's email (sign-in name)")
@click.option("--name", default=None, help="full name, shown on the dashboard")
def create_admin_command(email: str, name: str | None) -> None:
    """Create an admin. The password is prompted for, or read from stdin when piped."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = load_settings()

    async def work(db: Database) -> Any:
        async with db.transaction() as conn:
            return await create_admin(conn, email, password, name)

    try:
        user = with_database(settings, work)
    except DomainError as exc:
        raise click.ClickException(f"{exc.field or 'error'}: {exc.message}") from exc
    click.echo(f"admin {user.email} created (id {user.id})", err=True)


@click.group()
def leads() -> None:
    """Import and export leads as CSV."""


def _lines(file: Path) -> int:
    """Lines of the file (LF, CRLF or CR), counted in bytes: a quarter of the time of decoding."""
    newlines = returns = 0
    with file.open("rb") as raw:
        while block := raw.read(1 << 20):
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
    return max(newlines, returns)


@leads.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--actor", default=CLI_ACTOR, show_default=True, help="who the audit trail names")
def import_command(file: Path, batch_size: int, actor: str) -> None:
    """Import FILE.csv: each bad row skipped and reported as
    FILE:LINE: REASON (NUL characters, invalid UTF-8, fields over the size limit, invalid
    values). Exit status 1 when any row was skipped.

    Re-running the same file is harmless: same email and source = same lead. On PostgreSQL
    the good rows go through COPY and one set-based insert (--batch-size is for SQLite).
    """
    settings = load_settings()
    total = max(_lines(file) - 1, 0)  # for the progress bar
    # Bytes that are not UTF-8 make their row a bad row (reported), not the file unreadable.
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        try:
            rows = read_csv(f)
            first = next(rows, None)
        except BadFile as exc:
            raise click.ClickException(f"{file}: {exc}") from exc

        def all_rows() -> Any:
            if first is not None:
                yield first
            yield from rows

        with click.progressbar(length=total, label="Importing leads", file=sys.stderr) as bar:

            async def work(db: Database) -> Any:
                async with db.transaction() as conn:  # the whole file, or nothing
                    routes = (await Directory(settings).refresh(conn)).routes  # env + registry
                    if db.is_postgres:  # COPY into a staging table, one set-based insert
                        return await copy_import_leads(conn, all_rows(), actor, routes, bar.update)
                    return await import_leads(
                        conn, all_rows(), actor, routes, batch_size, bar.update
                    )

            report = with_database(settings, work)
    for error in report.errors:
        click.echo(f"{file}:{error.line}: {error.reason}", err=True)
    click.echo(
        f"{report.rows} rows: {report.imported} imported, {report.existing} already present, "
        f"{len(report.errors)} rejected",
        err=True,
    )
    if report.errors:
        sys.exit(1)


@leads.command("export")
@click.option("--status", type=click.Choice([s.value for s in LeadStatus]))
@click.option("--type", "lead_type", type=click.Choice([t.value for t in LeadType]))
@click.option("--source")
@click.option("--min-score", type=click.IntRange(0, 100))
@click.option("--assigned-to")
@click.option("--email")
@click.option("--since", type=click.DateTime(), help="created at or after (UTC)")
@click.option("--until", type=click.DateTime(), help="created before (UTC)")
@click.option("--sort", type=click.Choice([s.value for s in LeadSort]), default="newest")
def export_command(
    status: str | None,
    lead_type: str | None,
    source: str | None,
    min_score: int | None,
    assigned_to: str | None,
    email: str | None,
    since: datetime | None,
    until: datetime | None,
    sort: str,
) -> None:
    """Write the matching leads as CSV to stdout: crm leads export --status NEW > leads.csv"""
    from datetime import UTC

    settings = load_settings()
    filters = LeadFilters(
        status=LeadStatus(status) if status else None,
        type=LeadType(lead_type) if lead_type else None,
        source=source,
        min_score=min_score,
        assigned_to=assigned_to,
        email=email,
        created_from=since.replace(tzinfo=UTC) if since else None,
        created_to=until.replace(tzinfo=UTC) if until else None,
    )
    writer = csv.writer(sys.stdout, lineterminator="\n")

    async def work(db: Database) -> int:
        if db.is_postgres:  # one COPY ... TO STDOUT, formulas neutralised in SQL
            async with db.transaction() as conn:
                n = await export_csv(conn, filters, LeadSort(sort), sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return n
        n = -1  # the first row is the header
        async for row in export_leads(db, filters, LeadSort(sort)):
            writer.writerow(row)
            n += 1
        return n

    n = with_database(settings, work)
    click.echo(f"{n} leads exported", err=True)
