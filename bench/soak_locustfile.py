"""The soak bench's locustfile: loadgen's pymilvus users, plus a sampler of event-loop lag in each Locust process.

Every --sample seconds (env SOAK_LAG_FILE, SOAK_SAMPLE_S) each process appends one JSON line to SOAK_LAG_FILE.<pid>:
how late a 100 ms timer fired on the gevent hub (every user and send runs there) and on loadgen's asyncio loop (every
async call runs there), mean and max over the window. A bench file, not the package: it may read its environment.
"""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import asyncio
import json
import os
import time
from typing import Any

import gevent
from locust import events

import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.runtime import bridge
from loadgen.users.pymilvus import AsyncPymilvusUser, PymilvusUser

__all__ = ["AsyncPymilvusUser", "PymilvusUser"]
TICK_S = 0.1


class _Lags:
    def __init__(self) -> None:
        self.hub: list[float] = []
        self.loop: list[float] = []


def _hub_ticker(lags: _Lags) -> None:
    while True:
        begun = time.perf_counter()
        gevent.sleep(TICK_S)
        lags.hub.append((time.perf_counter() - begun - TICK_S) * 1000.0)


async def _loop_ticker(lags: _Lags) -> None:
    while True:
        begun = time.perf_counter()
        await asyncio.sleep(TICK_S)
        lags.loop.append((time.perf_counter() - begun - TICK_S) * 1000.0)


def _writer(lags: _Lags, path: str, every: float) -> None:
    while True:
        gevent.sleep(every)
        hub, loop = lags.hub, lags.loop
        lags.hub, lags.loop = [], []
        row: dict[str, Any] = {"t": time.time(), "pid": os.getpid()}
        for name, values in (("hub", hub), ("loop", loop)):
            if values:
                row[f"{name}_lag_ms_mean"] = round(sum(values) / len(values), 2)
                row[f"{name}_lag_ms_max"] = round(max(values), 2)
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


@events.test_start.add_listener
def _start_sampling(environment: Any, **_: Any) -> None:
    path = os.environ.get("SOAK_LAG_FILE")
    if not path or getattr(environment, "_soak_lags", None) is not None:
        return
    lags = _Lags()
    environment._soak_lags = lags
    gevent.spawn(_hub_ticker, lags)
    loop = bridge.loop  # started here (after any --processes fork), as the first async user would
    loop.call_soon_threadsafe(lambda: lags.__dict__.setdefault("task", loop.create_task(_loop_ticker(lags))))
    gevent.spawn(_writer, lags, f"{path}.{os.getpid()}", float(os.environ.get("SOAK_SAMPLE_S", "5")))
