"""Where the shared reference material (`shared/reference`) is, for tests that read the samples.

CI lays `shared/` beside the repository. A clone made anywhere else (`git clone . "$(mktemp -d)"`)
has no such neighbour, so the repository it was cloned from is asked next, then an explicit
`JOBWATCH_REFERENCE_DIR`.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _origin_checkout() -> Path | None:
    """The local repository this checkout was cloned from, if it was cloned from a path."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_absolute() and path.is_dir() else None


@cache
def reference_dir() -> Path:
    explicit = os.environ.get("JOBWATCH_REFERENCE_DIR")
    if explicit:
        return Path(explicit)
    beside = REPO_ROOT.parent / "shared" / "reference"
    if beside.is_dir():
        return beside
    origin = _origin_checkout()
    if origin is not None and (origin.parent / "shared" / "reference").is_dir():
        return origin.parent / "shared" / "reference"
    return beside  # missing: the tests that need it say so
