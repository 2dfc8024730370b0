"""`crm worker`, `crm beat`, `crm flower`, `crm hub-demo` and `crm notifications replay`."""

from __future__ import annotations

import os
import tempfile
import uuid

import click

from infra.settings import Settings


def register(main: click.Group) -> None:
    main.add_command(worker)
    main.add_command(beat)
    main.add_command(flower)
    main.add_command(hub_demo)
    main.add_command(notifications)


@click.command()
@click.option("--concurrency", "-c", default=2, show_default=True, type=int)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="serve the worker's Prometheus metrics on this port (default: CRM_WORKER_METRICS_PORT)",
)
def worker(concurrency: int, loglevel: str, metrics_port: int | None) -> None:
    """Run a Celery worker that delivers the outbox."""
    from crm_cli import load_settings

    settings = load_settings()
    port = metrics_port or settings.worker_metrics_port
    if port:
        _serve_worker_metrics(settings, port)
    from worker.celery_app import app

    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--queues={settings.celery_queue}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _serve_worker_metrics(settings: Settings, port: int) -> None:
    """The prefork children record into a multiprocess directory that this process serves."""
    import dataclasses

    from infra.logs import configure_logging
    from infra.metrics import share_across_processes

    configure_logging(settings)  # Celery configures it again on start; same format
    metrics_dir = settings.metrics_dir or tempfile.mkdtemp(prefix="crm-worker-metrics-")
    share_across_processes(metrics_dir)  # before the children fork
    from worker.metrics import serve_metrics

    serve_metrics(dataclasses.replace(settings, worker_metrics_port=port, metrics_dir=metrics_dir))


@click.command()
@click.option("--schedule", default=None, help="beat state file (default: a temp file)")
@click.option("--loglevel", default="INFO", show_default=True)
def beat(schedule: str | None, loglevel: str) -> None:
    """Run Celery beat: dispatch sweep, stats snapshots, stale alerts, retention, partitions."""
    from crm_cli import load_settings

    load_settings()
    from worker.celery_app import app

    path = schedule or os.path.join(tempfile.gettempdir(), f"crm-beat-{os.getpid()}")
    app.start(["beat", f"--loglevel={loglevel}", f"--schedule={path}"])


@click.command()
@click.option("--port", default=5555, show_default=True, type=int)
@click.option("--address", default="127.0.0.1", show_default=True)
def flower(port: int, address: str) -> None:
    """Run Celery Flower against the broker."""
    from crm_cli import load_settings

    load_settings()
    from worker.celery_app import app

    app.start(["flower", f"--port={port}", f"--address={address}"])


@click.command("hub-demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option(
    "--secret",
    envvar="CRM_TARGET_BZION_HUB_SECRET",
    required=True,
    help="whsec_... (default: CRM_TARGET_BZION_HUB_SECRET)",
)
def hub_demo(host: str, port: int, secret: str) -> None:
    """A demo BZION_HUB receiver that verifies each signature and prints what arrives."""
    from crm_cli.hub_demo import serve

    serve(host, port, secret.split()[0])


@click.group()
def notifications() -> None:
    """Outbox operations."""


@notifications.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--failed", is_flag=True, help="replay every dead-lettered notification")
def replay(ids: tuple[str, ...], failed: bool) -> None:
    """Send dead-lettered (FAILED) notifications again: by ID, or all with --failed."""
    from crm_cli import load_settings
    from domain.outbox import delivery
    from infra.db import Database, with_database

    if bool(ids) == failed:
        raise click.UsageError("give notification IDs or --failed, not both")
    try:
        wanted = [uuid.UUID(i) for i in ids] if ids else None
    except ValueError as exc:
        raise click.BadParameter(f"not a notification id: {exc}") from exc
    settings = load_settings()

    async def run(db: Database) -> list[uuid.UUID]:
        async with db.transaction() as conn:
            return await delivery.replay(conn, wanted)

    done = with_database(settings, run)
    for i in done:
        click.echo(str(i))
    click.echo(f"{len(done)} notification(s) re-queued", err=True)
    if wanted is not None and len(done) < len(wanted):
        raise SystemExit(1)
