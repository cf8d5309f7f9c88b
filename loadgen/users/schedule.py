"""The open model's send loop, one for every user class (the built-in store users and custom users): a ``Pacer`` at
the user's share of the rate, each due send handed to ``send``, the node's counts kept for ``kind``.

Users that start together each get a phase of their own, or their sends bunch up: 1,000 users at 0.15/s each all sent
at once every 6.7 s (bench/bench_scale.py). Between sends the loop sleeps until the next one is due (killable there).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent

from loadgen.locust import hooks
from loadgen.workload.arrival_rate import Counts, Pacer


def counts(kind: str) -> Counts | None:
    """This process's counts for ``kind``, looked up each time: a worker's are handed to the master and replaced at
    every stats report."""
    arrivals = hooks.state.arrivals
    return arrivals.of(kind) if arrivals is not None else None


def run(rate: float, kind: str, send: Callable[[float], None], *, process: str, rng: random.Random,
        stream_op: str = "") -> None:  # fmt: skip
    """Send at ``rate`` per second until killed; ``send(intended)`` gets each slot's intended perf_counter time."""
    seed, phase = rng.randrange(1 << 30), rng.random()
    pacer = Pacer(rate, process=process, seed=seed, phase=phase)
    wall_offset = time.time() - time.perf_counter()
    now = counts(kind)
    if now is not None:
        now.started(rate, pacer.start + wall_offset, stream_op)
    while True:
        for intended in pacer.due(time.perf_counter()):
            now = counts(kind)
            if now is not None:
                now.slot(intended + wall_offset + 1.0 / rate)
            send(intended)
        gevent.sleep(max(pacer.next_due - time.perf_counter(), 0.0))
