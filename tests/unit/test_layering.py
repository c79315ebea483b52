"""The layout's rules, checked on the import statements of the runtime package (docs/decisions.md, D22).

Each package of `jobwatch` may import only the packages listed for it: the pure core (`domain`,
`sources`, `render`) nothing that does I/O, the application only ports and the core, adapters
never the application; and the module graph has no cycles. A new import that breaks a rule fails
here with the offending line, before it becomes a habit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "jobwatch" / "jobwatch"

ALLOWED: dict[str, set[str]] = {
    "domain": {"domain", "settings"},
    "sources": {"domain", "sources"},
    "render": {"domain", "render", "sources"},
    "ports": {"domain", "sources"},
    "settings": set(),
    "observability": {"domain"},
    "channels": {"channels", "domain", "ports", "render", "settings"},
    "delivery": {"delivery", "channels", "domain", "ports", "observability"},
    "app": {"app", "domain", "ports", "settings", "sources", "observability"},
    "adapters": {"adapters", "domain", "ports", "render", "settings", "sources", "observability"},
    "api": {"api", "app", "domain", "ports", "settings", "sources", "observability"},
    "entrypoints": {"*"},
}
"""Top-level part of `jobwatch` -> the parts it may import (a part may always import itself)."""

NO_IO_LIBRARIES = {"boto3", "botocore", "httpx", "httpcore", "aws_lambda_powertools", "socket", "asyncio"}
PURE_CORE = {"domain", "sources", "render", "ports"}
TOOL_ONLY = {"argparse", "yaml", "rich", "jobwatch_tools", "jobwatch_devkit"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth (local imports count too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from jobwatch import sources` names a module
                yield node.lineno, f"{node.module}.{alias.name}"


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_every_part_imports_only_what_the_layout_allows() -> None:
    broken = []
    for name, path in _modules():
        part = _part(name) or "jobwatch"
        allowed = ALLOWED.get(part, set())
        for line, target in _imports(path):
            top = target.split(".")[0]
            if top in TOOL_ONLY:
                broken.append(f"{name}:{line} imports tool-only {target}")
            if part in PURE_CORE and top in NO_IO_LIBRARIES:
                broken.append(f"{name}:{line}: the pure core imports {target}")
            if top != "jobwatch" or target == "jobwatch":
                continue
            other = target.split(".")[1]
            if not (PACKAGE / other).exists() and not (PACKAGE / f"{other}.py").exists():
                continue  # `from jobwatch.x import name` where the name is not a module: checked via x
            if "*" not in allowed and other != part and other not in allowed:
                broken.append(f"{name}:{line} imports jobwatch.{other}, outside {sorted(allowed)}")
    assert broken == []


def test_the_runtime_package_has_no_import_cycles() -> None:
    names = {name for name, _ in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in _modules():
        targets = set()
        for _, target in _imports(path):
            while target and target not in names:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                targets.add(target)
        graph[name] = targets
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
