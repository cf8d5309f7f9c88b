"""Cost of the gevent -> asyncio bridge per call: a greenlet awaiting a coroutine that returns at once.

Target: at most 100 us per call on the 2-core build machine.
"""

# isort: split
import asyncio
import json
import statistics
import sys
import time

import gevent

from loadgen.runtime import bridge


async def noop() -> int:
    return 1


async def direct(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await noop()
    return time.perf_counter() - start


def blocking_round_trip(n: int) -> float:
    """The floor: a bare cross-thread round trip (run_coroutine_threadsafe + a blocking wait), no gevent at all."""
    start = time.perf_counter()
    for _ in range(n):
        asyncio.run_coroutine_threadsafe(noop(), bridge.loop).result()
    return time.perf_counter() - start


def sequential(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        bridge.run(noop(), 5)
    return time.perf_counter() - start


def concurrent(greenlets: int, n: int) -> float:
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(lambda: [bridge.run(noop(), 5) for _ in range(n)]) for _ in range(greenlets)])
    return time.perf_counter() - start


def main(calls: int = 20_000, rounds: int = 5) -> dict[str, float]:
    bridge.run(noop(), 5)  # start the loop thread
    seq = [sequential(calls) / calls * 1e6 for _ in range(rounds)]
    conc = [concurrent(10, calls // 10) / calls * 1e6 for _ in range(rounds)]
    base = [bridge.run(direct(calls), 60) / calls * 1e6 for _ in range(rounds)]
    floor = [blocking_round_trip(calls) / calls * 1e6 for _ in range(rounds)]
    return {
        "calls_per_round": calls,
        "bridge_us_per_call_sequential_median": statistics.median(seq),
        "bridge_us_per_call_10_greenlets_median": statistics.median(conc),
        "plain_await_us_per_call_median": statistics.median(base),
        "bare_cross_thread_round_trip_us_median": statistics.median(floor),
        "bridge_us_per_call_sequential_rounds": seq,
    }


if __name__ == "__main__":
    result = main(*(int(a) for a in sys.argv[1:]))
    print(json.dumps(result, indent=2))
