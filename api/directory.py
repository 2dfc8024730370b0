"""The API process's destinations directory (domain/destinations/directory.py), kept fresh by
one background task, so routing reads a cached snapshot and no request waits on a query."""

from __future__ import annotations

import asyncio
import contextlib

from litestar.datastructures import State

from domain.destinations.directory import Directory
from domain.rules import Route
from infra.db import Database
from infra.settings import Settings

DIRECTORY = "directory"
_REFRESHER = "directory_refresher"
_CHANGED = "directory_changed"


async def start(state: State, settings: Settings, db: Database) -> None:
    """Load the directory once, then reload it every `ttl` seconds (or at once when told)."""
    directory = Directory(settings)
    await directory.current(db.engine)
    changed = asyncio.Event()

    async def refresh_forever() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), directory.ttl)
            if changed.is_set():
                changed.clear()
                await asyncio.sleep(0.1)  # set inside the request: let its commit land first
            directory.invalidate()
            await directory.current(db.engine)

    state[DIRECTORY] = directory
    state[_CHANGED] = changed
    state[_REFRESHER] = asyncio.create_task(refresh_forever(), name="crm-directory")


async def stop(state: State) -> None:
    task: asyncio.Task[None] | None = state.get(_REFRESHER)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def directory_of(state: State) -> Directory:
    return state[DIRECTORY]  # type: ignore[no-any-return]


def routes(state: State) -> tuple[Route, ...]:
    """Where new notifications go: env and registry destinations, as last loaded (<= ~2 s)."""
    directory: Directory | None = state.get(DIRECTORY)
    if directory is None:  # before start-up completed
        settings: Settings = state.settings
        return settings.routes
    return directory.snapshot.routes


def changed(state: State) -> None:
    """This process changed the registry: reload soon (other processes follow within ttl)."""
    event: asyncio.Event | None = state.get(_CHANGED)
    if event is not None:
        event.set()


def pushing(state: State) -> bool:
    """Whether any destination is pushed to (else rows wait for pulls: no wake-up needed)."""
    directory: Directory | None = state.get(DIRECTORY)
    return bool(directory.snapshot.push_targets) if directory is not None else False
