"""Per-call overhead of loadgen's timed handles (``loadgen.clients.timed``) against the bare library call.

- ``wrapper``: a method that returns at once, bare and instrumented, reporting into Locust's own request statistics
  (a local runner) and loadgen's HDR histograms: the whole cost loadgen adds to each call, without server noise.
- ``milvus`` (with ``--host``): ``MilvusClient.search`` and ``AsyncMilvusClient.search`` (awaited one at a time on
  loadgen's loop), bare and timed, in alternating rounds on a small collection of their own (dropped after).

    python bench/bench_timed_client.py [--host URI] [--calls N]
"""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from locust.env import Environment
from locust.event import Events

from loadgen.clients.timed import Handle, Reporter, instrument
from loadgen.runtime import bridge
from loadgen.stats.histograms import HistogramListener


class Noop:
    def call(self, x: int) -> int:
        return x

    async def acall(self, x: int) -> int:
        return x


def _env() -> Any:
    env = Environment(events=Events())
    env.create_local_runner()  # Locust's request statistics listen, as in a real run
    HistogramListener(env)
    return env


def _sync_us(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


async def _async_us(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return (time.perf_counter() - start) / n * 1e6


def wrapper(n: int, rounds: int) -> dict[str, float]:
    timed = instrument(Noop(), Handle("bench", Reporter(_env().events), 10.0), ["call", "acall"])
    bare = Noop()
    out: dict[str, list[float]] = {"sync_bare": [], "sync_timed": [], "async_bare": [], "async_timed": []}
    for _ in range(rounds):
        out["sync_bare"].append(_sync_us(bare.call, n))
        out["sync_timed"].append(_sync_us(timed.call, n))
        out["async_bare"].append(bridge.run(_async_us(bare.acall, n), 60))
        out["async_timed"].append(bridge.run(_async_us(timed.acall, n), 60))  # reports hop to the hub: flushed below
    med = {k: statistics.median(v) for k, v in out.items()}
    return {
        **{f"{k}_us_median": v for k, v in med.items()},
        "sync_overhead_us": med["sync_timed"] - med["sync_bare"],
        "async_overhead_us": med["async_timed"] - med["async_bare"],
    }


def milvus(uri: str, n: int, rounds: int) -> dict[str, float]:
    from pymilvus import AsyncMilvusClient, MilvusClient

    name, dim = "lg_bench_timed", 32
    client = MilvusClient(uri=uri, alias="bench-timed-bare")
    client.create_collection(name, dimension=dim, consistency_level="Bounded")
    client.insert(name, [{"id": i, "vector": [float((i + j) % 7) for j in range(dim)]} for i in range(1000)])
    vec = [[0.5] * dim]
    env = _env()
    timed = instrument(MilvusClient(uri=uri, alias="bench-timed"), Handle("pymilvus", Reporter(env.events), 10.0))

    def make_async() -> Any:
        async def build() -> Any:
            return AsyncMilvusClient(uri=uri), AsyncMilvusClient(uri=uri)

        return bridge.run(build(), 30)

    abare, araw = make_async()
    atimed = instrument(araw, Handle("pymilvus", Reporter(env.events), 10.0))
    out: dict[str, list[float]] = {"sync_bare": [], "sync_timed": [], "async_bare": [], "async_timed": []}

    def search(c: Any) -> Any:
        return lambda _i: c.search(name, data=vec, limit=10)

    def asearch(c: Any) -> Any:
        return lambda _i: c.search(name, data=vec, limit=10)

    try:
        for c in (client, timed):
            _sync_us(search(c), 20)  # warm up both connections
        for c in (abare, atimed):
            bridge.run(_async_us(asearch(c), 20), 60)
        for _ in range(rounds):
            out["sync_bare"].append(_sync_us(search(client), n))
            out["sync_timed"].append(_sync_us(search(timed), n))
            out["async_bare"].append(bridge.run(_async_us(asearch(abare), n), 120))
            out["async_timed"].append(bridge.run(_async_us(asearch(atimed), n), 120))
    finally:
        client.drop_collection(name)
        client.close()
    med = {k: statistics.median(v) for k, v in out.items()}
    return {
        **{f"{k}_us_median": v for k, v in med.items()},
        "sync_overhead_us": med["sync_timed"] - med["sync_bare"],
        "async_overhead_us": med["async_timed"] - med["async_bare"],
        "requests_reported": sum(e.num_requests for e in env.runner.stats.entries.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="")
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    result: dict[str, Any] = {"wrapper": wrapper(args.calls, 5)}
    if args.host:
        result["milvus"] = milvus(args.host, max(args.calls // 100, 50), 5)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.set_event_loop(None)
    main()
