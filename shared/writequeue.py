"""The queue between an asyncio program and one database writer thread.

Callers `submit()` a plain function and await its result; the writer thread takes the
waiting functions in groups (`groups()`), runs each group in one transaction, and
`answer()`s each caller on the caller's own loop. Used by the terminal's SQLite layer
(shared/sqlite.py) and the server's (server/db.py): the grouping is what lets many
writers share one durable commit.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

C = TypeVar("C")  # the connection the functions get
T = TypeVar("T")
MAX_GROUP: Final = 256  # writes folded into one commit at most


class DatabaseClosed(RuntimeError):
    """The database was closed while a call was waiting."""


@dataclass(frozen=True)
class Job(Generic[C]):
    fn: Callable[[C], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop

    def answer(self, value: Any, err: BaseException | None) -> None:
        """Settle the caller's future from the writer thread."""
        self.loop.call_soon_threadsafe(settle, self.future, value, err)


class WriteQueue(Generic[C]):
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Job[C] | None] = queue.SimpleQueue()

    async def submit(self, fn: Callable[[C], T]) -> T:
        """Queue `fn`; return what it returned once its group is committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put(Job(fn, fut, loop))
        return await fut

    def close(self) -> None:
        """Let `groups()` end after what is queued before this call."""
        self._queue.put(None)

    def groups(self) -> Iterator[list[Job[C]]]:
        """For the writer thread: blocks for the next job, then yields it with every job
        already waiting (at most MAX_GROUP), until `close()`. Afterwards anything still
        queued is answered with DatabaseClosed, never left hanging."""
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                group, stop = [job], False
                while len(group) < MAX_GROUP:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    group.append(more)
                yield group
                if stop:
                    return
        finally:
            while True:
                try:
                    left = self._queue.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    left.answer(None, DatabaseClosed("database is closed"))


def settle(fut: asyncio.Future[Any], value: Any, err: BaseException | None) -> None:
    """Set a future's result or exception unless it is already done (cancelled)."""
    if fut.done():
        return
    if err is not None:
        fut.set_exception(err)
    else:
        fut.set_result(value)
