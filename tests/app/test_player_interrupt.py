"""Ctrl-C at any moment of the player's producer calls leaves it stoppable.

Python raises KeyboardInterrupt at the next check in the main thread, which can be the first
line of a Python-level `__exit__` such as threading.Condition's, before it releases its lock;
`stop()` and the audio callback then wait for that lock forever (a `speak` that never exits).
A profile function raises KeyboardInterrupt at each place CPython checks for signals, in turn:
the start of every Python function (threading.py's included) and the return of every C call.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from mlx_qwen3tts.app.player import Player

SR = 24000


def _interrupt_at(k: int):
    """A profile function that raises KeyboardInterrupt at the k-th function start or C return."""
    seen = 0

    def profile(frame, event, arg):
        nonlocal seen
        if event in ("call", "c_return"):
            seen += 1
            if seen == k:
                raise KeyboardInterrupt

    return profile


def _prepared(step: str) -> Player:
    player = Player(SR, buffer_seconds=1.0)
    if step == "write again":
        player.write(np.full(480, 0.1, np.float32))
        player.finish()  # the next write starts a new utterance
    return player


STEPS = {
    "write": lambda p: p.write(np.full(1920, 0.1, np.float32)),
    "write again": lambda p: p.write(np.full(1920, 0.1, np.float32)),
    "expect": lambda p: p.expect(3.0),
    "finish": lambda p: p.finish(),
    "stop": lambda p: p.stop(),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_interrupt_anywhere_leaves_the_player_stoppable(step):
    interrupted = 0
    for k in range(1, 500):
        player = _prepared(step)
        sys.setprofile(_interrupt_at(k))
        try:
            STEPS[step](player)
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            sys.setprofile(None)
        if interrupted < k:
            break  # the step ran to its end before the k-th event: every point was tried
        stopper = threading.Thread(target=player.stop, daemon=True)
        stopper.start()
        stopper.join(2.0)
        assert not stopper.is_alive(), f"stop() hangs after Ctrl-C at event {k} of {step}()"
        assert not player._lock.locked(), f"lock left held after Ctrl-C at event {k} of {step}()"
    assert interrupted >= 3, f"{step}() had only {interrupted} interruption points"
