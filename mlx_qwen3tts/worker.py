"""One thread for the package's MLX work, so streams can be made and read on any thread.

MLX streams, command encoders and compiled traces belong to the thread that made them: a graph
built on one thread cannot be evaluated on another, a compiled frame retraces on every new
thread, and two threads on one GPU need care. So a `TTS` runs its generators on the worker
thread and hands each result over: whatever thread creates a stream, whichever thread (or pool
of threads) advances it, the work happens in one place. A result crosses threads as numpy data.

The thread is one for the whole process and lives as long as it: with MLX 0.32, a thread that
has run compiled functions (`nn.gelu`, `nn.silu` are) and ends before the process can make the
process abort at exit ("terminate called without an active exception").
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


class Worker:
    """Runs callables on one daemon thread, started on first use; it never ends (see above)."""

    def __init__(self, name: str = "mlx-qwen3tts"):
        self._name = name
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def _ensure(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=_serve, args=(self._tasks,), name=self._name, daemon=True)
                self._thread.start()

    @property
    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable):
        """`fn()` on the worker thread; its result, or its exception raised here."""
        if self.on_thread:  # a task that calls back in (a decode inside a callback) runs at once
            return fn()
        self._ensure()
        task = _Task(fn)
        self._tasks.put(task)
        task.done.wait()
        if task.error is not None:
            error = task.error
            task.error = None
            raise error
        return task.result

    def iterate(self, make: Callable[[], Iterator], *, before: Callable[[], None] | None = None,
                after: Callable[[], None] | None = None, cancel: Callable[[], None] | None = None) -> RemoteIterator:
        """An iterator over the generator `make()` builds and advances on the worker thread.

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
    """A generator that lives on a `Worker`: `next()` and `close()` from any thread."""

    def __init__(self, worker: Worker, make, before, after, cancel):
        self._worker, self._make, self._before, self._after = worker, make, before, after
        self._cancel = cancel
        self._gen: Iterator | None = None
        self._state = "new"  # new -> running -> done

    def __iter__(self) -> RemoteIterator:
        return self

    def _step(self):
        if self._gen is None:
            self._gen = self._make()
        return next(self._gen)

    def __next__(self):
        if self._state == "done":
            raise StopIteration
        if self._state == "new":
            if self._before is not None:
                self._before()
            self._state = "running"
        try:
            return self._worker.call(self._step)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stops the generator (at once, where it heeds `cancel`) and frees it."""
        if self._state == "done":
            return
        running, self._state = self._state == "running", "done"
        if self._cancel is not None and self._gen is not None:
            self._cancel()
        try:
            if self._gen is not None:
                gen, self._gen = self._gen, None
                self._worker.call(gen.close)
        finally:
            if running and self._after is not None:
                self._after()

    def __del__(self):
        self.close()
