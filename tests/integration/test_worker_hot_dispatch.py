"""The hot dispatch's races, made to happen on purpose (worker/runtime.py `drain_hot`).

Real Redis; the dispatcher stands in as an outbox whose drain claims every committed row, so
the test decides exactly when a commit lands relative to the watch's last wait and its delete.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from infra.settings import Settings
from infra.wakeup_flag import WakeupFlag, WakeupWatch
from tests.conftest import REDIS_URL
from worker.dispatcher import DrainReport
from worker.runtime import drain_hot

URL = f"{REDIS_URL}/0"


class Outbox:
    """Stands in for the Dispatcher: a commit appends a row and wakes as the API does."""

    def __init__(self, queue: str) -> None:
        self.settings = replace(Settings(), dispatch_budget=5.0)
        self.stopping = False
        self.committed: list[str] = []
        self.claimed: list[str] = []
        self.api = WakeupFlag(URL, queue)
        self.published = 0

    def commit(self, row: str) -> None:
        self.committed.append(row)
        if self.api.wake():
            self.published += 1

    async def drain(self, budget: float | None = None) -> DrainReport:
        new = self.committed[len(self.claimed) :]
        self.claimed.extend(new)
        return DrainReport(claimed=len(new))


class CommitAroundLeave(WakeupWatch):
    """Commits one row just before the flag is deleted and one just after."""

    def __init__(self, outbox: Outbox, queue: str) -> None:
        super().__init__(URL, queue, hold_seconds=15)
        self.outbox = outbox

    async def leave(self) -> None:
        self.outbox.commit("before the delete")
        await super().leave()
        self.outbox.commit("after the delete")


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"crm-test-{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(URL).delete(f"crm-wakeup-pending:{name}", f"crm-wakeup:{name}")


def _run(outbox: Outbox, watch: WakeupWatch, linger: float) -> DrainReport:
    async def run() -> DrainReport:
        try:
            return await drain_hot(outbox, watch, linger, lambda: False)  # type: ignore[arg-type]
        finally:
            await watch.close()

    return asyncio.run(run())


def test_a_commit_just_before_the_watch_leaves_is_claimed_by_its_last_claim(queue):
    outbox = Outbox(queue)
    outbox.commit("first")  # publishes the wake-up this dispatch answers
    assert outbox.published == 1
    watch = CommitAroundLeave(outbox, queue)
    _run(outbox, watch, linger=0.1)
    assert "before the delete" in outbox.claimed  # pushed, unseen by any wait: the last claim
    # The one after the delete published a new dispatch (the last claim got it first here).
    assert outbox.published == 2
    assert outbox.claimed == outbox.committed


def test_commits_while_it_lingers_are_claimed_without_a_publish(queue):
    outbox = Outbox(queue)
    outbox.commit("first")
    watch = WakeupWatch(URL, queue, hold_seconds=15)

    async def commit_later() -> None:
        for i in range(5):
            await asyncio.sleep(0.05)
            outbox.commit(f"hot {i}")

    async def run() -> None:
        try:
            task = asyncio.create_task(commit_later())
            await drain_hot(outbox, watch, 0.3, lambda: False)  # type: ignore[arg-type]
            await task
        finally:
            await watch.close()

    asyncio.run(run())
    assert outbox.claimed == outbox.committed and len(outbox.claimed) == 6
    assert outbox.published == 1
