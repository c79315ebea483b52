"""Contract-test plumbing: find every reference sample and hand it to tests as fixtures/parameters.

The reference material lives beside the repository (`<parent>/shared/reference`, as in CI's fresh
clone; `jobwatch_devkit.reference` also finds it from a clone made elsewhere). Samples are discovered
here, not listed, so a sample added upstream shows up as a test that fails until someone classifies
it. Tests get everything through fixtures (never `import conftest`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobwatch_devkit.reference import reference_dir

REFERENCE = reference_dir()
WEAVIATE_EXAMPLES = REFERENCE / "weaviate" / "examples.constructed.json"
WEAVIATE_SCHEMAS = REFERENCE / "weaviate" / "export-and-backup-schemas.json"
MILVUS_SAMPLES = REFERENCE / "milvus" / "samples"
WEAVIATE_SECTIONS = ("export", "backup")
_STATUS_IN_KEY = re.compile(r"\b([1-5]\d\d)\b")

FAMILY_SOURCES = {
    "zilliz-cloud-v1": ("zilliz-import-v1",),
    "zilliz-cloud-v2": ("zilliz-import-v2",),
    "milvus-v2": ("milvus-import",),
    "pinecone": ("pinecone-import",),
    "weaviate/export": ("weaviate-export",),
    "weaviate/backup": ("weaviate-backup", "weaviate-restore"),
}
"""Which sources a sample directory/section can seed (for fuzzing); exact pairs are in the tests."""


@dataclass(frozen=True)
class Sample:
    """One reference response: where it came from, the HTTP status it was sent with, its body."""

    id: str
    family: str
    http_status: int | None
    body: Any


def _milvus_samples() -> list[Sample]:
    samples = []
    for path in sorted(MILVUS_SAMPLES.glob("*/*.json")):
        data = json.loads(path.read_text())
        sample_id = str(path.relative_to(REFERENCE))
        samples.append(Sample(sample_id, path.parent.name, data.get("http_status"), data.get("body")))
    return samples


def _weaviate_samples() -> list[Sample]:
    """Every entry of the export and backup sections, errors included; the HTTP status is in the key."""
    examples = json.loads(WEAVIATE_EXAMPLES.read_text())
    samples = []
    for section in WEAVIATE_SECTIONS:
        entries = dict(examples[section])
        errors = entries.pop("errors", {})
        named = [(f"weaviate/{section}/{key}", key, value) for key, value in entries.items()]
        named += [(f"weaviate/{section}/errors/{key}", key, value) for key, value in errors.items()]
        for sample_id, key, value in named:
            match = _STATUS_IN_KEY.search(key)
            status = int(match.group(1)) if match else None
            samples.append(Sample(sample_id, f"weaviate/{section}", status, value))
    return samples


def discover_samples() -> list[Sample]:
    if not REFERENCE.is_dir():
        return []
    return _milvus_samples() + _weaviate_samples()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "reference_sample" in metafunc.fixturenames:
        samples = discover_samples()
        metafunc.parametrize("reference_sample", samples, ids=[sample.id for sample in samples])


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference folder; a missing one fails loudly instead of skipping the contract."""
    if not REFERENCE.is_dir():
        pytest.fail(f"reference material not found at {REFERENCE} (expected beside the repository)")
    return REFERENCE


@pytest.fixture(scope="session")
def reference_samples(reference_dir: Path) -> list[Sample]:
    return discover_samples()


@pytest.fixture(scope="session")
def weaviate_example_sections(reference_dir: Path) -> set[str]:
    """Top-level keys of the Weaviate examples, so a new section cannot hide from classification."""
    return set(json.loads(WEAVIATE_EXAMPLES.read_text()))


@pytest.fixture(scope="session")
def weaviate_definitions(reference_dir: Path) -> dict[str, Any]:
    """`definitions` of the Weaviate export/backup OpenAPI subset."""
    definitions: dict[str, Any] = json.loads(WEAVIATE_SCHEMAS.read_text())["definitions"]
    return definitions


@pytest.fixture(scope="session")
def seed_bodies(reference_samples: list[Sample]) -> dict[str, list[Any]]:
    """Source name -> JSON-object bodies from the reference, starting points for mutation fuzzing."""
    seeds: dict[str, list[Any]] = {}
    for sample in reference_samples:
        if isinstance(sample.body, dict):
            for source in FAMILY_SOURCES[sample.family]:
                seeds.setdefault(source, []).append(sample.body)
    return seeds
