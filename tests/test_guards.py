"""The runaway guards on their own: a repeating code, a short cycle, the budget as the text grows,
and near-silence only after speech (no model)."""

from __future__ import annotations

import numpy as np

from mlx_qwen3tts.audio import SAMPLE_RATE
from mlx_qwen3tts.guards import FrameGuard, Guards, SilenceGuard


def test_guard_state_detects_cycles_and_silence():
    guard = FrameGuard(Guards(cycle_frames=12, max_period=3), budget=1000)
    reasons = [(guard(c) or (None,))[0] for c in [5, 9, 3] * 10]
    assert "repetition" in reasons and reasons.index("repetition") < 20
    quiet = SilenceGuard(Guards(silence_seconds=1.0))
    assert quiet(np.zeros(48000, np.float32), SAMPLE_RATE) is None  # no speech yet: a pause, not a fault
    assert quiet(np.full(1920, 0.1, np.float32), SAMPLE_RATE) is None
    assert quiet(np.zeros(12000, np.float32), SAMPLE_RATE) is None
    assert quiet(np.zeros(12000, np.float32), SAMPLE_RATE)[0] == "silence"


def test_one_code_held_stops_at_repeat_frames_and_claims_the_whole_run():
    guard = FrameGuard(Guards(repeat_frames=10), budget=1000)
    assert [guard(c) for c in [1, 2, 3] + [7] * 9] == [None] * 12
    assert guard(7) == ("repetition", 10)  # the tenth 7: all ten frames belong to the fault


def test_the_budget_follows_the_text_known_so_far():
    known = [3]
    guard = FrameGuard(Guards(), budget=lambda: known[0])
    assert guard(1) is None and guard(2) is None
    known[0] = 5  # more text arrived: more frames allowed
    assert guard(3) is None and guard(4) is None
    assert guard(5) == ("budget", 0)
    assert Guards(frames_per_token=2.0, slack_frames=7).budget(10) == 27


def test_silence_is_counted_in_frames_of_the_quiet_stretch():
    quiet = SilenceGuard(Guards(silence_seconds=0.5))
    assert quiet(np.full(1920, 0.1, np.float32), SAMPLE_RATE) is None
    assert quiet(np.zeros(0, np.float32), SAMPLE_RATE) is None  # an empty chunk says nothing
    assert quiet(np.zeros(SAMPLE_RATE // 4, np.float32), SAMPLE_RATE) is None
    assert quiet(np.full(1920, 0.1, np.float32), SAMPLE_RATE) is None  # speech again: the count restarts
    assert quiet(np.zeros(SAMPLE_RATE // 4, np.float32), SAMPLE_RATE) is None
    assert quiet(np.zeros(SAMPLE_RATE // 4, np.float32), SAMPLE_RATE) == ("silence", 6)  # 0.5 s at 12.5 frames/s
