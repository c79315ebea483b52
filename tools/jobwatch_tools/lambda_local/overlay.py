"""This machine's builds of the compiled distributions of a `sam build` layer, at the artifact's versions.

`sam build` builds the layer for the functions' architecture (arm64) without Docker: it downloads
that platform's wheels. Their compiled modules cannot load anywhere else; pydantic_core fails the
import outright, while wrapt or aiohttp quietly fall back to pure Python, which is not what Lambda
runs. So, per layer, the distributions whose WHEEL tags are not `*-none-any` are installed again for
this machine (`pip install --no-deps --only-binary=:all:`, pinned to the artifact's own versions)
into an overlay that goes on PYTHONPATH before the layer. Every other file is imported from the
artifact as built, and the overlay is checked to be the artifact's own files apart from the compiled
modules. The artifact itself is never touched: `sam deploy` zips what `sam build` made.

Overlays are cached per content under `<deps_dir>/<hash>/` (the pins, the runtime, this machine),
complete once `.complete` exists; a new one is made aside and renamed into place, so concurrent runs
never see half of one.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jobwatch_tools.errors import OperatorError

COMPLETE = ".complete"
COMPILED_SUFFIXES = (".so", ".pyd")
PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class CompiledDistribution:
    """A distribution of the artifact built for one platform (a WHEEL tag that is not `*-none-any`)."""

    name: str
    version: str
    root: Path
    """The directory it is installed in (the layer's `python/` or its site-packages)."""
    dist_info: Path

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    def files(self) -> list[str]:
        """What it installed (its RECORD), relative to `root`, without metadata and outside files."""
        rows = (self.dist_info / "RECORD").read_text(encoding="utf-8").splitlines()
        paths = (row.split(",", 1)[0] for row in rows if row)
        return [p for p in paths if ".dist-info/" not in p and ".data/" not in p and not p.startswith("..")]


def _header(lines: Iterable[str], name: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{name}:")]


def compiled_distributions(roots: Iterable[Path]) -> list[CompiledDistribution]:
    """Every platform-specific distribution installed in `roots`."""
    found = []
    for root in roots:
        for dist_info in sorted(root.glob("*.dist-info")):
            wheel = dist_info / "WHEEL"
            if not wheel.is_file():
                continue
            tags = _header(wheel.read_text(encoding="utf-8").splitlines(), "Tag")
            if not tags or all(tag.endswith("-none-any") for tag in tags):
                continue
            metadata = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines()
            name, version = _header(metadata, "Name")[0], _header(metadata, "Version")[0]
            found.append(CompiledDistribution(name, version, root, dist_info))
    return found


def overlay_for(roots: list[Path], *, python: str, runtime: str, deps_dir: Path) -> Path | None:
    """The overlay of this machine's builds for the compiled distributions in `roots` (None: there are
    none), made with `python` (the runtime's interpreter) unless it is cached already."""
    dists = compiled_distributions(roots)
    if not dists:
        return None
    pins = sorted(dist.pin for dist in dists)
    key = json.dumps([runtime, platform.system(), platform.machine(), pins])
    target = deps_dir / hashlib.sha256(key.encode()).hexdigest()[:12]
    if (target / COMPLETE).exists():
        return target
    deps_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=deps_dir))
    staging.chmod(0o755)  # mkdtemp's 0700 would keep the cache private to its creator
    try:
        _pip_install(python, staging, pins)
        for dist in dists:
            _check_only_compiled_modules_differ(dist, staging)
        (staging / COMPLETE).write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pip_install(python: str, target: Path, pins: list[str]) -> None:
    # Run by the runtime's own python3.13, pip picks this machine's wheels.
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    command += ["--only-binary=:all:", "--no-compile", "--target", str(target), *pins]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        said = errors[-1] if errors else (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperatorError(f"cannot install this machine's wheels of {' '.join(pins)}: pip: {said}")


def _check_only_compiled_modules_differ(dist: CompiledDistribution, overlay: Path) -> None:
    differing = []
    for relative in dist.files():
        if relative.endswith(COMPILED_SUFFIXES):
            continue
        built, local = dist.root / relative, overlay / relative
        if built.is_file() and not (local.is_file() and filecmp.cmp(built, local, shallow=False)):
            differing.append(relative)
    if differing:
        raise OperatorError(
            f"this machine's {dist.pin} differs from the artifact's in more than compiled modules "
            f"({', '.join(differing[:3])}): run the function in a container instead (sam local invoke)"
        )


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished overlay to its cache name; a concurrent run may have put one there first."""
    if target.exists() and not (target / COMPLETE).exists():
        shutil.rmtree(target, ignore_errors=True)  # left by a run that did not finish
    try:
        staging.rename(target)
    except OSError:
        if not (target / COMPLETE).exists():
            raise
