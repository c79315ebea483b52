"""The floor the poller's upstream side is compared with: a minimal aiohttp client, in its own process.

Run by `bench_poller.py` as `python baseline_client.py REQUESTS.json`: the file holds the exact
requests the poller sends for its jobs (method, URL, headers, JSON body; Weaviate status is a GET,
Milvus' describe a POST) and the pool limits. Each round opens one ClientSession over a TCPConnector
with the poller's limits (`limit` = poll concurrency, `limit_per_host` = endpoint concurrency, as the
poller's own pool), sends every request at once, reads every body and `json.loads` it: no parsing into
snapshots, no state, no AWS. The CPU time of each round is this process's `time.process_time`, so
nothing of the benchmark process is in it. The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


async def _one(session: aiohttp.ClientSession, request: dict[str, Any]) -> bool:
    async with session.request(
        request["method"],
        request["url"],
        params=request.get("params"),
        headers=request.get("headers"),
        json=request.get("json"),
    ) as response:
        body = await response.read()
    json.loads(body)
    return response.status == 200


async def _round(requests: list[dict[str, Any]], limit: int, limit_per_host: int) -> int:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = await asyncio.gather(*(_one(session, r) for r in requests))
    return sum(answers)


def main(path: str) -> int:
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    requests: list[dict[str, Any]] = spec["requests"]
    cpu_s: list[float] = []
    wall_s: list[float] = []
    ok: list[int] = []
    for _ in range(int(spec["rounds"])):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        ok.append(asyncio.run(_round(requests, int(spec["limit"]), int(spec["limit_per_host"]))))
        wall_s.append(time.perf_counter() - wall0)
        cpu_s.append(time.process_time() - cpu0)
    print(json.dumps({"requests": len(requests), "ok": ok, "cpu_s": cpu_s, "wall_s": wall_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
