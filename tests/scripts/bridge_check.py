"""Exercises loadgen.runtime's bridge in a process of its own (it monkey-patches); prints JSON for the test."""

# isort: split
import asyncio
import json
import threading
import time

import gevent
import grpc
from gevent._hub_local import get_hub_if_exists

from loadgen.errors import CallTimeout
from loadgen.runtime import BridgeStopped, bridge


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

# a greenlet killed while it waits (Locust stopping a user) cancels its coroutine on the loop too
cancelled: list[bool] = []


async def watched() -> int:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise
    return 0


victim = gevent.spawn(bridge.run, watched(), 60)
gevent.sleep(0.2)
victim.kill()
gevent.sleep(0.3)
out["killed_greenlet_cancelled_coroutine"] = cancelled == [True]

# the same kill with answer_when_killed (the greenlet driver's calls): the call answers, and the greenlet ends with
# Answered carrying the answer, to be reported (a call cancelled at a stop made Milvus fail other users' calls)
ended: list[str] = []


async def answered_later() -> int:
    try:
        await asyncio.sleep(0.5)
    except asyncio.CancelledError:
        ended.append("cancelled")
        raise
    ended.append("answered")
    return 7


victim = gevent.spawn(bridge.run, answered_later(), 60, answer_when_killed=True)
gevent.sleep(0.2)
victim.kill()  # Locust's kill: blocks until the greenlet ends, which is after the answer
out["killed_answered"] = [ended, type(victim.value).__name__, getattr(victim.value, "result", None)]


# grpc.aio's first channel makes its completion queue, which signals the loop through a socket pair: a gevent one
# (patched) put a gevent hub in the loop's thread; the bridge makes that queue with plain sockets first
async def aio_channel() -> bool:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never used: no connection is made
    await channel.close()
    return get_hub_if_exists() is None


out["loop_thread_without_gevent_hub"] = bridge.run(aio_channel(), timeout=5)
out["after_aio_channel"] = bridge.run(answer(9, 0.01), timeout=5)

# stop() at quit: a greenlet still waiting wakes at once (not at its 30 s timeout), and a later call fails at once
# instead of starting a second loop whose clients would not be the first loop's
waiting = gevent.spawn(bridge.run, answer(7, 30), 30)
gevent.sleep(0.2)
start = time.perf_counter()
bridge.stop()
waiting.join(timeout=10)
out["stop_woke_waiter_s"] = time.perf_counter() - start
out["stop_waiter_error"] = type(waiting.exception).__name__
try:
    bridge.run(answer(8, 0), timeout=5)
except BridgeStopped:
    out["after_stop"] = "refused"
gevent.sleep(0.2)
out["loop_threads"] = sum(t.name == "loadgen-asyncio" for t in threading.enumerate())
print(json.dumps(out))
