"""Opens async stores of every layer against a server the test has frozen, while a probe on loadgen's asyncio loop
measures its largest gap between two 50 ms ticks: a store that blocks the loop (a sync library call on the loop
thread) would stall every async user of the process for its whole timeout."""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import asyncio
import json
import os
import sys
import time

import gevent

from loadgen import clients
from loadgen.config.settings import Settings
from loadgen.runtime import bridge, off_hub

settings = Settings(
    uri=os.environ["URI"], collection="frozen_open", dim=4, timeout=2.0,
    weights={"search": 1, "similarity_search": 1, "query": 1},  # no from_documents: no ingest threads to build
)  # fmt: skip
for layer in ("pymilvus", "langchain", "llamaindex"):
    clients.preload(layer)  # as Locust's init does: imports never run in a user's greenlet
bridge.run(asyncio.sleep(0), 10)  # the loop runs before the server freezes
print("ready", flush=True)
sys.stdin.readline()  # the test froze the server


async def probe() -> float:
    gaps, last = [], time.perf_counter()
    for _ in range(60):  # 3 s of ticks
        await asyncio.sleep(0.05)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return max(gaps) * 1000.0


def open_one(layer: str) -> dict[str, object]:
    adapter = clients.adapter(layer)
    start = time.perf_counter()
    try:
        store = off_hub(adapter.open, settings, True)  # as StoreUser.on_start does
        bridge.run(adapter.attach(store), settings.timeout + 1)
        error = ""
    except Exception as exc:
        error = type(exc).__name__
    return {"layer": layer, "seconds": time.perf_counter() - start, "error": error}


start = time.perf_counter()
opens = [gevent.spawn(open_one, layer) for layer in ("pymilvus", "langchain", "llamaindex") for _ in range(2)]
gap = gevent.spawn(bridge.run, probe(), 20)
gevent.joinall([*opens, gap], timeout=60)
out = {"opens": [g.value for g in opens], "max_loop_gap_ms": gap.value, "total_s": time.perf_counter() - start}
print(json.dumps(out), flush=True)
os._exit(0)  # the server is frozen: skip closing connections
