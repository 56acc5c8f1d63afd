"""Streaming codec decoders for concurrent streams: one each, all sharing one set of weights.

A streaming decoder keeps its stream's state (conv context, attention cache) in its modules,
so two streams cannot share one. A second decoder is the same module tree made anew with the
first one's weight arrays put in (no copy): it costs only its own state.
"""

from __future__ import annotations

import threading

import mlx.core as mx


class DecoderPool:
    """Hands out idle decoders; makes another (weights shared) when all are in use."""

    def __init__(self, decoder):
        self._base = decoder
        self._idle = [decoder]
        self._lock = threading.Lock()
        self.made = 1

    def take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.made += 1
        twin = type(self._base)(self._base.config)
        twin.update(self._base.parameters())
        twin.eval()
        mx.eval(twin.parameters())  # the shared arrays: nothing is computed
        return twin

    def give(self, decoder) -> None:
        decoder.reset_state()
        with self._lock:
            self._idle.append(decoder)
