"""The seven simulated sources and their dialects, in the order error messages list them."""

from __future__ import annotations

from . import milvus, pinecone, weaviate, zilliz
from .jobs import Dialect

DIALECTS: dict[str, Dialect] = {
    dialect.source: dialect
    for dialect in (
        weaviate.EXPORT,
        weaviate.BACKUP,
        weaviate.RESTORE,
        zilliz.V1,
        zilliz.V2,
        milvus.DIALECT,
        pinecone.DIALECT,
    )
}
SOURCES: tuple[str, ...] = tuple(DIALECTS)


def dialect_of(source: str) -> Dialect:
    """The source's dialect; a ValueError naming the valid sources for any other name."""
    dialect = DIALECTS.get(source)
    if dialect is None:
        raise ValueError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    return dialect
