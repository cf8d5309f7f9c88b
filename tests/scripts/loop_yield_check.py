"""Closed-model async users with no wait (``constant(0)``) over a fake store whose calls answer at once, without
ever waiting on the loop: the users' tasks skip the trip round the loop between two calls
(``drivers.loop.YIELD_EVERY``), so this checks that they still yield to the loop's other tasks (a ticker here, 10 ms
apart), that a stop ends them, and that every call made is a row. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import asyncio
import json
import time

import gevent
import gevent.monkey
from fake_runner import start
from locust import constant

from loadgen.clients import fake
from loadgen.runtime import bridge
from loadgen.users.fake import AsyncFakeUser


class Eager(AsyncFakeUser):
    wait_time = constant(0)


calls = [0]
real_sleep = gevent.monkey.get_original("time", "sleep")


async def _at_once(k: int) -> list[int]:  # no await: the task never gives the loop back by itself
    calls[0] += 1
    real_sleep(0.001)  # 1 ms in the loop's thread, the interpreter lock let go (as a blocking client would)
    return list(range(k))


fake._ahits = _at_once  # the operations look it up at each call
ticks: list[float] = []


async def _ticker() -> None:
    while True:
        ticks.append(time.perf_counter())
        await asyncio.sleep(0.01)


runner, users = start([Eager], ["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8"], 2)
ticker = asyncio.run_coroutine_threadsafe(_ticker(), bridge.loop)
gevent.sleep(0.3)  # the users' first task starts their loops
window = time.perf_counter()
gevent.sleep(1.0)  # the ticker runs every third turn of each user (three steps of the loop): ~10 times here
on_loop = [u.driver.name == "loop" for u in users]
ticked = sum(t > window for t in ticks)
began = time.perf_counter()
runner.stop()
stop_s = time.perf_counter() - began
ticker.cancel()
rows = sum(entry.num_requests for entry in runner.stats.entries.values())
out = {
    "on_loop": on_loop,
    "calls": calls[0],
    "rows": rows,
    "ticks": ticked,
    "stop_s": stop_s,
}
runner.quit()
print(json.dumps(out))
