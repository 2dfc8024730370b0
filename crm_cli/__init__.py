"""The `crm` command: every command a user runs. The one place that imports api, domain and worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import click

from infra.settings import EPHEMERAL_SECRET_KEY, ConfigError, Settings


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
    from infra.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def api(host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn)."""
    import secrets

    import uvicorn

    from api.serving import server_options

    load_settings()  # fail fast, naming the variable, before forking workers
    if workers > 1 and not os.environ.get("CRM_SECRET_KEY"):
        # One key for all the workers: a CSRF token one process signs, the others accept.
        os.environ["CRM_SECRET_KEY"] = secrets.token_urlsafe(32)
        os.environ[EPHEMERAL_SECRET_KEY] = "1"  # not a key to encrypt stored secrets under
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        **server_options(),  # request headers capped (api/serving.py)
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--hub-port", default=8001, show_default=True, type=int)
def run(host: str, port: int, hub_port: int) -> None:
    """Everything on one machine: migrate, then API, worker, beat (and a demo hub).

    With no CELERY_BROKER_URL on the SQLite default, the broker is a SQLite file too, so
    nothing needs a server. With no target configured, a demo BZION_HUB receiver is started
    with a fresh signing secret, so a form visibly becomes a verified, signed webhook.
    """
    import base64
    import secrets
    import threading

    from infra.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    env = dict(os.environ)
    # The demo hub (and a target the user runs on this machine) listens on loopback.
    env.setdefault("CRM_EGRESS_ALLOW", "127.0.0.0/8,::1/128")
    if settings.is_sqlite and not env.get("CELERY_BROKER_URL"):
        env["CELERY_BROKER_URL"] = "sqla+sqlite:///./crm-broker.db"
    if settings.is_sqlite and not env.get("CRM_SECRET_KEY"):
        # The embedded default keeps its key in a local file beside crm.db, so destinations'
        # secrets stored by one `crm run` still decrypt at the next.
        env["CRM_SECRET_KEY"] = local_secret_key(LOCAL_SECRET_KEY_FILE)
    commands = [
        ["api", "--host", host, "--port", str(port)],
        ["worker", "--concurrency", "1"],
        ["beat"],
    ]
    if not settings.targets:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        env["CRM_TARGET_BZION_HUB_URL"] = f"http://127.0.0.1:{hub_port}/webhook"
        env["CRM_TARGET_BZION_HUB_SECRET"] = secret
        commands.insert(0, ["hub-demo", "--port", str(hub_port)])
    # Each child in its own session: a signal to this command's process group (a terminal's
    # Ctrl-C, `kill -- -PGID`) reaches this process only, which stops the children in order.
    # Signalled all at once, a Celery pool process can die holding a lock its parent then
    # waits on forever.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "from crm_cli import main; main()", *c],
            env=env,
            start_new_session=True,
        )
        for c in commands
    ]
    click.secho(
        f"crm-sync on http://{host}:{port} (API docs: /schema). Try:\n"
        f"  curl -s localhost:{port}/api/forms/submit -H 'content-type: application/json' "
        '-d \'{"formType":"quote_request","email":"buyer@company.com"}\'',
        fg="cyan",
        err=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set() and all(p.poll() is None for p in procs):
        stop.wait(0.5)
    exited = [c[0] for c, p in zip(commands, procs, strict=True) if p.poll() is not None]
    _stop_children(procs, grace=STOP_GRACE_SECONDS)
    if exited and not stop.is_set():
        raise click.ClickException(f"stopped because {', '.join(exited)} exited")


STOP_GRACE_SECONDS = 10.0
LOCAL_SECRET_KEY_FILE = "./crm-secret.key"


def local_secret_key(path: str) -> str:
    """The key in `path`, made (random, readable by this user only) on first use."""
    import secrets

    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _stop_children(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM to each child (its graceful stop), then SIGKILL to whatever of its process group
    is still there after `grace` seconds: `crm run` never leaves a process behind."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # the child's own session: it and its pool
        p.wait()


def _register_subcommands() -> None:
    """Each feature keeps its commands in its own module of this package."""
    import importlib

    for name in ("worker", "admin", "targets", "customers"):
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
