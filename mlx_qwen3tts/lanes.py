"""Threads for the package's MLX work, so streams can be made and read on any thread.

MLX streams, command encoders and compiled traces belong to the thread that made them: a graph
built on one thread cannot be evaluated on another, a compiled frame retraces on every new
thread, and two threads on one GPU need care. So a `TTS` runs each generator on a thread of
the package's (a lane) and hands each result over: whatever thread creates a stream,
whichever thread (or pool of threads) advances it, its work happens in one place. A result
crosses threads as numpy data.

The lanes live as long as the process: with MLX 0.32, a thread that has run compiled
functions (`nn.gelu`, `nn.silu` are) and ends before the process can make the process abort at
exit ("terminate called without an active exception").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import mlx.core as mx


class _Task:
    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable):
        self.fn, self.done, self.result, self.error = fn, threading.Event(), None, None


def _serve(tasks: queue.SimpleQueue) -> None:
    # A stream of the thread's own for everything it runs: MLX aborts the process at exit when
    # a compiled function traced on a finished thread's *default* stream is freed.
    with mx.stream(mx.new_stream(mx.default_device())):
        while (task := tasks.get()) is not None:
            _run(task)
            task = None  # nothing of a finished task stays alive in this frame


def _run(task: _Task) -> None:
    try:
        task.result = task.fn()
    except BaseException as e:  # handed to the caller, whatever it is (StopIteration too)
        task.error = e
    task.done.set()


class Lane:
    """One thread and its queue of tasks."""

    def __init__(self, name: str):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=_serve, args=(self._tasks,), name=name, daemon=True)
        self.thread.start()

    def call(self, fn: Callable):
        """`fn()` on this lane's thread; its result, or its exception raised here."""
        if threading.current_thread() is self.thread:
            return fn()
        task = _Task(fn)
        self._tasks.put(task)
        task.done.wait()
        if task.error is not None:
            error = task.error
            task.error = None
            raise error
        return task.result


class Worker:
    """Lanes that run MLX work, started as needed and never ended (see above).

    A stream keeps one lane for its whole life (its queued frames live on that thread's
    streams); other work takes any idle lane, so a stream waiting for its text holds up
    nothing else. Lanes are reused: there are as many as work ever ran at once.
    """

    def __init__(self, name: str = "mlx-qwen3tts"):
        self._name = name
        self._lock = threading.Lock()
        self._lanes: list[Lane] = []
        self._idle: list[Lane] = []

    def take(self) -> Lane:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            lane = Lane(f"{self._name}-{len(self._lanes)}")
            self._lanes.append(lane)
            return lane

    def give(self, lane: Lane) -> None:
        with self._lock:
            self._idle.append(lane)

    @property
    def on_thread(self) -> bool:
        return any(threading.current_thread() is lane.thread for lane in self._lanes)

    def call(self, fn: Callable):
        """`fn()` on an idle lane; its result, or its exception raised here."""
        if self.on_thread:  # a task that calls back in (a decode inside a callback) runs at once
            return fn()
        lane = self.take()
        try:
            return lane.call(fn)
        finally:
            self.give(lane)

    def iterate(self, make: Callable[[], Iterator], *, before: Callable[[], None] | None = None,
                after: Callable[[], None] | None = None, cancel: Callable[[], None] | None = None) -> RemoteIterator:
        """An iterator over the generator `make()` builds and advances on one lane.

        `before()` runs on the caller's thread at the first `next()`, `after()` once the
        iterator is done (exhausted, failed or closed). `cancel()` runs when it is closed, before
        the generator is: it tells a step in flight (or waiting for input) to stop now.
        """
        return RemoteIterator(self, make, before, after, cancel)


_SHARED = Worker()


def shared() -> Worker:
    """The process's worker."""
    return _SHARED


class RemoteIterator:
    """A generator that lives on a lane: `next()` and `close()` from any thread, even at once."""

    def __init__(self, worker: Worker, make, before, after, cancel):
        self._worker, self._make, self._before, self._after = worker, make, before, after
        self._cancel = cancel
        self._gen: Iterator | None = None
        self._lane: Lane | None = None
        self._closed = False
        self._mutex = threading.Lock()

    def __iter__(self) -> RemoteIterator:
        return self

    def _step(self):
        if self._closed:  # a step queued behind a close
            raise StopIteration
        if self._gen is None:
            self._gen = self._make()
        return next(self._gen)

    def _shut(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            gen.close()

    def __next__(self):
        with self._mutex:
            if self._closed:
                raise StopIteration
            if self._lane is None:
                if self._before is not None:
                    self._before()
                self._lane = self._worker.take()
        try:
            return self._lane.call(self._step)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stops the generator (at once, where it heeds `cancel`) and frees it and its lane."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            lane = self._lane
        if lane is None:
            return
        try:
            if self._cancel is not None:
                self._cancel()
            lane.call(self._shut)
        finally:
            self._worker.give(lane)
            if self._after is not None:
                self._after()

    def __del__(self):
        self.close()
