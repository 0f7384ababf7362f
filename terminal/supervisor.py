"""One owner for the daemon's background loops and their error handling.

    supervisor = Supervisor(pause=600)
    supervisor.spawn(sync_loop)            # runs for good: a failure is logged, paused, retried
    await supervisor.async_close()         # cancels and waits for every loop

A loop handles the failures it expects (the server unreachable or refusing) itself;
what reaches the supervisor is a bug, and a bug in one loop must not stop it for good
nor take the other loops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self, *, pause: float) -> None:
        self._pause = pause  # seconds between a loop's failure and its restart
        self.tasks: list[asyncio.Task[None]] = []
        self.failures: dict[str, int] = {}  # loop name -> failures so far

    def spawn(self, fn: Loop) -> None:
        name = fn.__name__.strip("_")

        async def keep_running() -> None:
            while True:
                try:
                    await fn()
                except Exception:
                    self.failures[name] = self.failures.get(name, 0) + 1
                    log.exception("the %s failed; restarting it", name.replace("_", " "))
                    await asyncio.sleep(self._pause)

        self.tasks.append(asyncio.create_task(keep_running(), name=f"terminal-{name}"))

    async def async_close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
