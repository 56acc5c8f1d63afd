"""`.ci/ran_all.py PYTEST_LOG COLLECT_ONLY_OUTPUT`: exits non-zero unless the pytest run whose
output is in PYTEST_LOG ended with its summary line and ran (passed, failed, skipped, xfailed,
xpassed) as many tests as `pytest --collect-only -q` counted: a test that ends the interpreter
early (os._exit, say) leaves exit status 0 and no summary behind. Standard library only."""

from __future__ import annotations

import re
import sys

SUMMARY = re.compile(r"=*\s*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s(?: \([\d:]+\))?\s*=*")
COLLECTED = re.compile(r"(\d+)(?:/\d+)? tests? collected(?: \(\d+ deselected\))? in .*")  # "2/11 ... (9 deselected)" with -k
RAN = ("passed", "failed", "skipped", "xfailed", "xpassed")


def check(log: str, collect_only: str) -> str | None:
    """None when every collected test ran, else what went wrong."""
    counted = [m for m in map(COLLECTED.fullmatch, collect_only.strip().splitlines()[-1:]) if m]
    if not counted:
        return f"pytest --collect-only did not say how many tests there are: {collect_only.strip()[-300:]!r}"
    summaries = [m for m in map(SUMMARY.fullmatch, log.strip().splitlines()[-3:]) if m]
    if not summaries:
        return "pytest's run was cut short: its output ends without the final summary line"
    counts = {word: int(n) for n, word in re.findall(r"(\d+) ([a-z]+)", summaries[-1].group(1))}
    ran, want = sum(counts.get(k, 0) for k in RAN), int(counted[0].group(1))
    if ran != want:
        return f"pytest's run was cut short: {ran} tests ran, {want} were collected"
    return None


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        log = f.read()
    with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
        collect_only = f.read()
    problem = check(log, collect_only)
    if problem:
        sys.exit(f".ci/run: error: {problem}")
    print(".ci/run: every collected test ran")
