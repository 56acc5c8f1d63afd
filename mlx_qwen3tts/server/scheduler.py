"""The one model, lent to up to `max_batch` jobs at once (they run as one batch), in arrival order.

Everything that runs the model (an HTTP speech request, a voice upload, a WebSocket session
while it has text to speak) takes a `Turn`; beyond `max_batch` holders the others wait in a
bounded first-come-first-served queue, and one more than it holds is refused (`QueueFull`, a
503). A holder that can let go early (a WebSocket session between utterances) watches
`Turn.wanted`, set as soon as anyone is waiting behind it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class QueueFull(Exception):
    """Too many jobs are waiting already."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(f"the server is busy: {waiting} requests are waiting already; "
                         f"try again in {retry_after} s")
        self.waiting, self.retry_after = waiting, retry_after


@dataclass
class Turn:
    """One job's hold on the model."""

    label: str
    asked: float  # when it asked (perf_counter)
    ahead: int = 0  # jobs holding or waiting for the model when it asked
    granted: float = 0.0
    wanted: asyncio.Event = field(default_factory=asyncio.Event)  # someone is waiting behind it

    @property
    def waited(self) -> float:
        return self.granted - self.asked


class Scheduler:
    """A FIFO semaphore over the model, `max_batch` holders and at most `max_queue` waiters;
    event-loop only."""

    def __init__(self, max_queue: int, max_batch: int = 1):
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be 1 or more, got {max_batch}")
        self.max_queue, self.max_batch = max_queue, max_batch
        self._holders: list[Turn] = []
        self._waiters: deque[tuple[asyncio.Future, Turn]] = deque()
        self._held_seconds = 2.0  # running mean of how long a job holds the model, for Retry-After

    @property
    def busy(self) -> bool:
        """Whether every place in the batch is taken."""
        return len(self._holders) >= self.max_batch

    @property
    def in_use(self) -> int:
        return len(self._holders)

    @property
    def waiting(self) -> int:
        return sum(1 for future, _ in self._waiters if not future.done())

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead times the mean hold (shared by
        the batch's places), at least 1."""
        return max(1, math.ceil(self._held_seconds * (self.waiting + 1) / self.max_batch))

    async def acquire(self, label: str) -> Turn:
        turn = Turn(label, time.perf_counter(), self.waiting + len(self._holders))
        if not self.busy and not self.waiting:
            return self._grant(turn)
        if self.waiting >= self.max_queue:
            raise QueueFull(self.waiting, self.retry_after())
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((future, turn))
        for holder in self._holders:
            holder.wanted.set()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result())  # granted just as it was given up: pass it on
            else:
                self._drop(future)
            raise

    def release(self, turn: Turn) -> None:
        """Ends `turn` (again is a no-op) and hands its place to the first live waiter."""
        if turn not in self._holders:
            return
        held = time.perf_counter() - turn.granted
        self._held_seconds = 0.8 * self._held_seconds + 0.2 * held
        self._holders.remove(turn)
        while self._waiters:
            future, waiter = self._waiters.popleft()
            if not future.done():
                future.set_result(self._grant(waiter))
                return

    def _grant(self, turn: Turn) -> Turn:
        turn.granted = time.perf_counter()
        self._holders.append(turn)
        if self.waiting:
            turn.wanted.set()
        return turn

    def _drop(self, future: asyncio.Future) -> None:
        for i, (f, _) in enumerate(self._waiters):
            if f is future:
                del self._waiters[i]
                return


async def acquire_or_drop(scheduler: Scheduler, label: str, feed, leave: Callable[[object], None],
                          error: Callable[[str, str], Awaitable[None]]) -> Turn | None:
    """A turn for a live session's `feed`; with the queue full, its text is dropped instead:
    the feed is cancelled and left (`leave(feed)`), the client told why, and None returned."""
    try:
        return await scheduler.acquire(label)
    except QueueFull as e:
        feed.cancel()
        leave(feed)
        await error(f"{e}; this text was dropped", "server_busy")
        return None
