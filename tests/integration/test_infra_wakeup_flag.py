"""The wake-up protocol's Redis side (infra/wakeup_flag.py), against real Redis.

The API publishes only when it set the flag; while a wake-up is pending or a dispatch watches,
commits push to a one-element list instead; a watch is taken, kept and left by token only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis

from infra.wakeup_flag import PENDING, WakeupFlag, WakeupWatch
from tests.conftest import REDIS_URL

URL = f"{REDIS_URL}/0"


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"crm-test-{uuid.uuid4().hex[:8]}"
    yield name
    redis.Redis.from_url(URL).delete(f"crm-wakeup-pending:{name}", f"crm-wakeup:{name}")


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_one_publish_then_one_element_pushes_however_many_commits(queue: str) -> None:
    flag = WakeupFlag(URL, queue)
    assert flag.wake() is True  # set the flag: publish
    assert [flag.wake() for _ in range(100)] == [False] * 100  # ride on it
    r = redis.Redis.from_url(URL)
    assert r.get(flag.key) == PENDING.encode()
    assert r.llen(flag.list_key) == 1
    assert 0 < r.ttl(flag.list_key) <= 30 and 0 < r.ttl(flag.key) <= 30
    flag.clear()  # the publish failed: the next commit publishes again
    assert flag.wake() is True


def test_a_dispatch_takes_a_pending_flag_and_commits_then_push_to_its_list(queue: str) -> None:
    flag = WakeupFlag(URL, queue)
    r = redis.Redis.from_url(URL)

    async def scenario() -> None:
        watch = WakeupWatch(URL, queue, hold_seconds=15)
        assert flag.wake() is True
        flag.wake()  # a commit before the dispatch started: its first claim sees it
        assert await watch.take() is True
        assert r.get(flag.key) == watch.token.encode() and r.llen(flag.list_key) == 0
        assert await watch.wait(0.05) is False
        assert flag.wake() is False  # a commit while it watches: no publish, a push
        assert await watch.wait(1) is True
        assert await watch.keep() is True
        await watch.leave()
        assert r.exists(flag.key) == 0
        assert flag.wake() is True  # after it left: publish again
        await watch.close()

    _run(scenario())


def test_only_one_dispatch_watches_and_a_taken_over_watch_never_deletes_the_flag(
    queue: str,
) -> None:
    flag = WakeupFlag(URL, queue)
    r = redis.Redis.from_url(URL)

    async def scenario() -> None:
        first = WakeupWatch(URL, queue, hold_seconds=15)
        second = WakeupWatch(URL, queue, hold_seconds=15)
        assert await first.take() is True
        assert await second.take() is False  # a sweep while one watches: drains, returns
        r.delete(flag.key)  # the first watch's flag expired...
        assert flag.wake() is True  # ...a commit published a wake-up...
        assert await second.take() is True  # ...which a dispatch took over
        assert await first.keep() is False  # the first one stops watching
        await first.leave()
        assert r.get(flag.key) == second.token.encode()  # not deleted by the stale token
        await second.leave()
        assert r.exists(flag.key) == 0
        await first.close()
        await second.close()

    _run(scenario())
