"""The open model's one schedule, for every user class (the store users and ``VectorStoreUser``) and every driver: a
``Pacer`` at the user's share of the rate, the sends due, each admitted or dropped (``--max-in-flight``), and the
node's counts for its request type kept on the hub.

A driver only says how it waits for the next due send and how a send runs (``Schedule.due`` then ``Schedule.wait``,
in a greenlet or an asyncio task); the counts reach the hub through the driver's ``deliver``, like its rows.

Users that start together each get a phase of their own, or their sends bunch up: 1,000 users at a small share each
all sent at once every period (bench/COST.md section 4).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from loadgen.config.settings import Settings
from loadgen.locust import hooks
from loadgen.workload.arrival_rate import Counts, Pacer, lag_ms


class Plan(NamedTuple):
    """One schedule of a user: its rate (this user's share), the request type its sends are counted under, which
    task each send runs, and the operation of a ``--stream-rates`` stream ("" for ``--arrival-rate``)."""

    rate: float
    kind: str
    pick: Callable[[], str]
    stream_op: str = ""


def counts(kind: str) -> Counts | None:
    """This process's counts for ``kind``, looked up each time: a worker's are handed to the master and replaced at
    every stats report."""
    arrivals = hooks.state.arrivals
    return arrivals.of(kind) if arrivals is not None else None


def share(settings: Settings, runner_users: int) -> float:
    """One user's share of a total rate: the rate divided by the users in the whole test (set by the master), or
    by this runner's users where the test's total is not known."""
    return 1.0 / max(settings.total_users or runner_users or 1, 1)


def unsent(kind: str) -> None:
    """On the hub: a due send whose task had nothing of its own to do yet is counted as skipped, not as sent."""
    if (now := counts(kind)) is not None:
        now.sent -= 1
        now.skipped += 1


def _started(kind: str, rate: float, window_start: float, stream_op: str) -> None:
    if (now := counts(kind)) is not None:
        now.started(rate, window_start, stream_op)


def _due(kind: str, window_end: float, lag: float | None) -> None:
    """On the hub: a slot came due; ``lag``: sent that late (ms), or None: dropped (its user's calls still out)."""
    if (now := counts(kind)) is not None:
        now.slot(window_end)
        if lag is None:
            now.dropped += 1
        else:
            now.sent_one(lag)


class Schedule:
    """One plan's sends, paced: ``due`` hands out the sends whose time came (each with its intended perf_counter
    time), ``wait`` is how long until the next one. ``deliver(fn, *args)`` runs the counts' updates on the hub."""

    def __init__(
        self, plan: Plan, *, process: str, limit: int, rng: random.Random, deliver: Callable[..., None]
    ) -> None:
        self.plan, self.limit, self.deliver = plan, limit, deliver
        seed, phase = rng.randrange(1 << 30), rng.random()
        self.pacer = Pacer(plan.rate, process=process, seed=seed, phase=phase)
        self.wall_offset = time.time() - time.perf_counter()
        deliver(_started, plan.kind, plan.rate, self.pacer.start + self.wall_offset, plan.stream_op)

    def due(self, in_flight: Callable[[], int]) -> Iterator[float]:
        """The intended times of the sends due now that may go (fewer than ``limit`` of the user's calls out);
        the others are counted as dropped."""
        kind, period = self.plan.kind, 1.0 / self.plan.rate
        for intended in self.pacer.due(time.perf_counter()):
            window_end = intended + self.wall_offset + period
            if in_flight() >= self.limit:
                self.deliver(_due, kind, window_end, None)
                continue
            self.deliver(_due, kind, window_end, lag_ms(intended))
            yield intended

    def wait(self) -> float:
        """Seconds until the next send is due."""
        return max(self.pacer.next_due - time.perf_counter(), 0.0)
