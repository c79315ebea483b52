"""The built layer is runtime code only, and every module of it imports with the layer's own
requirements under python3.13 (the Lambda runtime).

`sam build` builds the layer for arm64, whose compiled wheels (pydantic_core) cannot load on this
machine; so the check takes the built layer's own `jobwatch` package, installs
`layers/jobwatch/requirements.txt` for the local platform into a directory of its own, and imports
every module with nothing else on the path (`python3.13 -S`: no site-packages). A module that needs
a package the layer does not ship (PyYAML, rich, the CLI's own) fails here instead of in Lambda.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from jobwatch_devkit.sam import SamCli

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "layers" / "jobwatch" / "requirements.txt"
TOOL_ONLY = ("argparse", "yaml", "rich", "jobwatch_tools", "jobwatch_devkit")

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
sys.path[:0] = [sys.argv[1]]
import jobwatch
failed = []
walked = pkgutil.walk_packages(jobwatch.__path__, "jobwatch.")
names = [m.name for m in walked if not m.name.endswith(".__main__")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
tools = sorted(m for m in sys.modules if m.split(".")[0] in TOOL_ONLY)
print(f"{len(names)} modules")
if failed or tools:
    print("\\n".join(failed + [f"tool-only module loaded: {m}" for m in tools]))
    sys.exit(1)
"""


def _local_requirements(python: str) -> Path:
    """`requirements.txt` installed for this machine once per content (cached next to the venvs)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    target = ROOT / ".venv-layer-check" / digest
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    result = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(target),
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (target / ".complete").touch()
    return target


def test_every_layer_module_imports_with_only_the_layer_requirements(
    sam: SamCli, sam_build_dir: Path, tmp_path: Path
) -> None:
    python = str(sam.python313)
    if not sam.python313.exists():
        pytest.skip("python3.13 is not next to the SAM CLI")
    built = sam_build_dir / "JobwatchLayer" / "python"
    shipped = sorted(path.name for path in built.iterdir() if path.name.startswith("jobwatch"))
    assert shipped == ["jobwatch"], f"the layer ships {shipped}: tools and the devkit must stay out"
    assert not list((built / "jobwatch").rglob("cli.py")), "no CLI code in the layer"

    site = tmp_path / "site"
    shutil.copytree(_local_requirements(python), site, ignore=shutil.ignore_patterns(".complete"))
    shutil.copytree(built / "jobwatch", site / "jobwatch")
    script = f"TOOL_ONLY = {set(TOOL_ONLY)!r}\n" + IMPORT_EVERY_MODULE
    clean_env = {"PATH": sam.env["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(tmp_path)}
    check = subprocess.run(
        [python, "-S", "-c", script, str(site)],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert int(check.stdout.split()[0]) > 50  # every module was walked, not an empty package
