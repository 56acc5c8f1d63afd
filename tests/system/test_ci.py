"""`.ci/run`'s last step, `.ci/ran_all.py`: a pytest run that stops early fails CI even when
pytest's exit status is 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / ".ci" / "ran_all.py"

# The third test ends the interpreter as a crash or a stray os._exit would: status 0, no summary.
CUT_SHORT = '''
import os
def test_one(): pass
def test_two(): pass
def test_three(): os._exit(0)
def test_four(): pass
'''


def check(tmp_path: Path, log: str, collect_only: str) -> subprocess.CompletedProcess:
    (tmp_path / "log").write_text(log)
    (tmp_path / "collected").write_text(collect_only)
    return subprocess.run([sys.executable, str(CHECK), str(tmp_path / "log"), str(tmp_path / "collected")],
                          capture_output=True, text=True, timeout=60)


def test_a_run_that_ends_early_with_status_0_fails(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_cut.py").write_text(CUT_SHORT)
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(pytest, cwd=project, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0  # what made the check necessary
    collected = subprocess.run(pytest + ["--collect-only"], cwd=project, capture_output=True, text=True, timeout=120)
    out = check(tmp_path, run.stdout + run.stderr, collected.stdout)
    assert out.returncode == 1 and "cut short: its output ends without the final summary line" in out.stderr
    (project / "test_cut.py").write_text(CUT_SHORT.replace("os._exit(0)", "pass"))
    whole = subprocess.run(pytest, cwd=project, capture_output=True, text=True, timeout=120)
    assert check(tmp_path, whole.stdout, collected.stdout).returncode == 0


def test_summary_counts_must_match_the_collection(tmp_path):
    collected = "tests/test_a.py::test_x\n\n12 tests collected in 1.02s\n"
    ok = check(tmp_path, "....\n10 passed, 2 skipped, 3 warnings in 3.21s (0:00:03)\n", collected)
    assert ok.returncode == 0, ok.stderr
    short = check(tmp_path, "....\n9 passed, 2 skipped in 3.21s\n", collected)
    assert short.returncode == 1 and "11 tests ran, 12 were collected" in short.stderr
    selected = check(tmp_path, "2 passed, 9 deselected in 0.5s\n", "2/11 tests collected (9 deselected) in 0.68s\n")
    assert selected.returncode == 0, selected.stderr  # PYTEST_ADDOPTS=-k ... selects for both runs
    broken = check(tmp_path, "10 passed in 1s\n", "ERROR collecting tests/test_a.py\n")
    assert broken.returncode == 1 and "did not say how many tests" in broken.stderr
