"""One stream's place in a batch (`batch.py`): its request, its state between steps, and its
reader's end."""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from .generation import FrameStepper
from .models.talker import Talker
from .prompt import PromptVectors
from .sampling import SamplingConfig

AHEAD = 8  # frames a stream may run ahead of its reader (a chunk decodes meanwhile); then it sits out


def cat(arrays: list[mx.array]) -> mx.array:
    return mx.concatenate(arrays) if len(arrays) > 1 else arrays[0]  # alone: no copy


@dataclass(frozen=True)
class Prefill:
    """A stream asked for: the batch's thread prefills it and hands back its `Member` (None
    when it ends at once)."""

    prompt: PromptVectors
    sampling: SamplingConfig
    seed: int | None
    ahead: int | None
    member: Future


class Member:
    """One stream in (or waiting for) the batch: its state, and the queue its reader reads."""

    def __init__(self, stepper: FrameStepper, prompt: PromptVectors, c0: mx.array, hidden: mx.array,
                 last_step: int, ahead: int | None):
        self.stepper, self.prompt, self.c0, self.hidden = stepper, prompt, c0, hidden
        self.last_step, self.ahead = last_step, ahead
        self.step = 0
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.left = False  # set by the reader: drop at the next step boundary

    @classmethod
    def prefilled(cls, talker: Talker, job: Prefill) -> Member | None:
        """Runs `job`'s prompt: the stream's place, or None when it ends at once."""
        stepper = FrameStepper(talker, job.prompt, job.sampling, job.seed)
        c0, hidden = stepper.prefill()
        stepper.settle(c0, hidden)
        last_step = job.sampling.max_new_tokens - 1  # the last draw gets no residual codes
        if last_step <= 0 or c0.item() == stepper.eos:
            return None
        return cls(stepper, job.prompt, c0, hidden, last_step, job.ahead)

    def feeds(self) -> bool:
        """Whether this step feeds a frame back (not on the budget's last draw)."""
        return self.step + 1 < self.last_step

    def queued_all(self) -> bool:
        """Whether its last frame (the budget's) is queued already."""
        return self.step >= self.last_step

    def ready(self) -> bool:
        """Whether its step can run now: its reader keeps up, and its text is there (or it has
        failed or been cancelled, which the step finds out)."""
        if self.stepper is None or self.queued_all():
            return False
        if self.ahead is not None and self.results.qsize() >= self.ahead:
            return False
        return not self.feeds() or self.prompt.ready(self.step)

    def free(self) -> None:
        self.stepper = self.c0 = self.hidden = None  # caches go with the stepper


class Reader:
    """A stream's frames as its batch hands them over; closing it (or dropping it) takes the
    stream out at the next step boundary, whether or not a frame was read."""

    def __init__(self, engine, member: Member):
        self._engine, self._member, self._done = engine, member, False

    def __iter__(self) -> Reader:
        return self

    def __next__(self) -> tuple[np.ndarray, bool]:
        if self._done:
            raise StopIteration
        item = self._member.results.get()
        self._engine._wake()  # a stream held back by its reader may go on
        if isinstance(item, BaseException):
            self.close()
            raise item
        if item[1]:
            self.close()
        return item

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._engine._leave(self._member)

    def __del__(self):
        self.close()
