"""Simulator of the upstream job-status APIs jobwatch polls (Weaviate, Zilliz v1/v2, Milvus, Pinecone).

Why: jobwatch must be tested offline, but its hard cases are the upstreams' quirks (Weaviate's zero
`completedAt` while running, Zilliz v1's 0..1 `readyPercentage`, HTTP 200 carrying an error code,
401 bodies per vendor...). Every body here follows the shapes recorded in shared/reference; the
simulator never invents a shape, only values.

A job is a script of steps. Each status request serves the current step, then moves on; the last step
repeats forever. A step is either a job *state* (rendered into that source's exact body) or a *fault*
(HTTP error, 429, malformed JSON, schema drift, hang, reset...; and hostile answers: a body past the
cap, endless, dripping or deeply nested, an error echoing the request's credential). Another process
can drive it through the `/_sim/*` control API; `python -m <package>.simulator --port P` runs it
standalone.

Layout: `script` (states, faults, steps and their builders), `jobs` (the job cursor and the `Dialect`
each source plugs in), `hostile_bodies` (how hostile faults are served, and the simulator's bounds on
them), one module per vendor (`weaviate`, `zilliz`, `milvus`, `pinecone`), `sources` (the seven
dialects), `server` (routing, serving, recording) and `control` (the `/_sim/*` API).
Import everything from this package: the module split is not part of the interface.
"""

from __future__ import annotations

from .hostile_bodies import ECHO_HEADER, ENDLESS_MAX_BYTES, STREAM_MAX_S
from .milvus import MILVUS
from .pinecone import PINECONE
from .script import (
    Fault,
    FaultKind,
    JobState,
    Step,
    fault_api_error,
    fault_array,
    fault_deep,
    fault_disconnect,
    fault_drift,
    fault_echo,
    fault_endless,
    fault_hang,
    fault_html,
    fault_http,
    fault_malformed,
    fault_oversized,
    fault_rate_limit,
    fault_reset,
    fault_slow,
    hold,
    state,
    steps_from_json,
    steps_to_json,
    unknown_status,
)
from .server import RequestRecord, UpstreamSimulator, main
from .sources import SOURCES
from .weaviate import WEAVIATE_BACKUP, WEAVIATE_EXPORT, WEAVIATE_RESTORE
from .zilliz import (
    ZILLIZ_V1,
    ZILLIZ_V1_BAD_PARAMS_CODE,
    ZILLIZ_V1_NOT_FOUND_CODE,
    ZILLIZ_V2,
    ZILLIZ_V2_NOT_FOUND_CODE,
)

__all__ = [
    "ECHO_HEADER",
    "ENDLESS_MAX_BYTES",
    "MILVUS",
    "PINECONE",
    "SOURCES",
    "STREAM_MAX_S",
    "WEAVIATE_BACKUP",
    "WEAVIATE_EXPORT",
    "WEAVIATE_RESTORE",
    "ZILLIZ_V1",
    "ZILLIZ_V1_BAD_PARAMS_CODE",
    "ZILLIZ_V1_NOT_FOUND_CODE",
    "ZILLIZ_V2",
    "ZILLIZ_V2_NOT_FOUND_CODE",
    "Fault",
    "FaultKind",
    "JobState",
    "RequestRecord",
    "Step",
    "UpstreamSimulator",
    "fault_api_error",
    "fault_array",
    "fault_deep",
    "fault_disconnect",
    "fault_drift",
    "fault_echo",
    "fault_endless",
    "fault_hang",
    "fault_html",
    "fault_http",
    "fault_malformed",
    "fault_oversized",
    "fault_rate_limit",
    "fault_reset",
    "fault_slow",
    "hold",
    "main",
    "state",
    "steps_from_json",
    "steps_to_json",
    "unknown_status",
]
