"""The `crm` command: every command a user runs. The one place that imports api, domain and worker."""

from __future__ import annotations

import sys

import click

from domain.config import ConfigError, Settings


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


@click.group()
def main() -> None:
    """crm-sync: capture leads, customers and quote requests; deliver them as signed webhooks."""


@main.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from domain.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def api(host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn)."""
    import uvicorn

    load_settings()  # fail fast, naming the variable, before forking workers
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Everything on one machine: migrate the database, then serve the API."""
    from domain.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    click.echo(
        f"crm-sync on http://{host}:{port}  (API docs: http://{host}:{port}/schema)", err=True
    )
    api.callback(host=host, port=port, workers=1)  # type: ignore[misc]


def _register_subcommands() -> None:
    """Each feature keeps its commands in its own module of this package."""
    import importlib

    for name in ("worker", "admin"):
        try:
            module = importlib.import_module(f"crm_cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"crm_cli.{name}":
                raise
            continue
        module.register(main)


_register_subcommands()

if __name__ == "__main__":
    sys.exit(main())
