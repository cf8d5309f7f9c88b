"""Exercises loadgen.runtime's bridge in a process of its own (it monkey-patches); prints JSON for the test."""

# isort: split
import asyncio
import json
import time

import gevent

from loadgen.errors import CallTimeout
from loadgen.runtime import bridge


async def answer(value: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return value


async def boom() -> int:
    raise ValueError("server said no")


out: dict[str, object] = {"value": bridge.run(answer(42, 0.01), timeout=5)}
try:
    bridge.run(boom(), timeout=5)
except ValueError as exc:
    out["error"] = str(exc)

start = time.perf_counter()
try:
    bridge.run(answer(1, 30), timeout=0.5)
except CallTimeout as exc:
    out["timeout_message"] = str(exc)
out["timeout_elapsed"] = time.perf_counter() - start

ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
start = time.perf_counter()
results = gevent.joinall([gevent.spawn(bridge.run, answer(i, 0.3), 5) for i in range(20)])
out["concurrent_elapsed"] = time.perf_counter() - start
out["concurrent_values"] = sorted(g.value for g in results)
out["ticks_meanwhile"] = len(ticks)
ticker.kill()
print(json.dumps(out))
