"""Registry of job sources. Adding a source = adding one module and one line in `_MODULES`."""

from __future__ import annotations

import importlib
from functools import cache

from jobwatch.sources.base import Source

# name -> module path; modules are imported on first use so a cold start only pays for what it polls.
_MODULES: dict[str, str] = {
    "weaviate-export": "jobwatch.sources.weaviate_export",
    "zilliz-import-v1": "jobwatch.sources.zilliz_import_v1",
    "weaviate-backup": "jobwatch.sources.weaviate_backup",
    "weaviate-restore": "jobwatch.sources.weaviate_restore",
    "zilliz-import-v2": "jobwatch.sources.zilliz_import_v2",
    "milvus-import": "jobwatch.sources.milvus_import",
    "pinecone-import": "jobwatch.sources.pinecone_import",
}


def source_names() -> list[str]:
    return sorted(_MODULES)


class UnknownSourceError(KeyError):
    def __str__(self) -> str:
        return f"unknown source {self.args[0]!r}; valid sources: {', '.join(source_names())}"


@cache
def get_source(name: str) -> Source:
    try:
        module_path = _MODULES[name]
    except KeyError:
        raise UnknownSourceError(name) from None
    module = importlib.import_module(module_path)
    source: Source = module.SOURCE
    return source
