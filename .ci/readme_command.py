"""`.ci/readme_command.py N`: prints the Nth ```bash block of README.md's "Set up" section, so
that CI runs the README's own commands, never a copy that could drift. Standard library only."""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def setup_commands(text: str) -> list[str]:
    """The ```bash blocks of the "## Set up" section, in order."""
    section = re.search(r"^## Set up\n(.*?)(?=^## )", text, re.M | re.S)
    if section is None:
        raise ValueError("README.md has no '## Set up' section")
    return [block.strip() for block in re.findall(r"^```bash\n(.*?)^```", section.group(1), re.M | re.S)]


if __name__ == "__main__":
    n = int(sys.argv[1])
    blocks = setup_commands(README.read_text(encoding="utf-8"))
    if not 1 <= n <= len(blocks):
        sys.exit(f"readme_command.py: README.md's Set up section has {len(blocks)} bash blocks, not {n}")
    print(blocks[n - 1])
