"""The open load model: requests sent at a fixed total arrival rate, whatever the server's latency.

Closed-loop users (Locust's model) send the next request only when the last one answered, so a slow server slows the
generator down and the slow period is sampled by a handful of requests (coordinated omission). Here each user holds a
``Pacer``: a schedule of intended send times at its share of the total rate (``--arrival-rate`` divided by the number
of users in the test), and sends each request at its intended time in a greenlet of its own. Latency is measured
from the *intended* send time, so time spent queued behind a stall, or in a late generator, counts.

A send that starts more than ``LATE_MS`` after its intended time is *late*; one that finds the user's
``--max-in-flight`` requests all still outstanding is *dropped* (not sent, and counted). ``ArrivalStats`` counts per
request type and merges workers' counts on the master like the latency histograms (``loadgen.stats.listeners``).

The same machinery runs fixed-rate background streams (``--stream-rates insert=20,delete=5``) next to either model:
"search while inserting at a fixed rate", or upsert/delete churn.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

LATE_MS = 10.0  # a send this much behind schedule is late (gevent's hub on a busy core jitters by a few ms)
PROCESSES = ("uniform", "poisson")
# an open-model user's own task does nothing (its schedule's greenlets send): the user waits this long in Locust's
# wait between two of them, where a stop ends it at once. It napped a second in the task before: every user woke
# every second, in the generator's CPU per call (bench/COST.md section 4, run G)
PACED_WAIT_S = 60.0


def paced_wait() -> float:
    """An open-model user's ``wait_time``, set per instance: its class's closed-model pacing does not apply."""
    return PACED_WAIT_S


class Pacer:
    """Intended send times (``time.perf_counter`` seconds) at ``rate`` per second from ``start``.

    ``uniform``: evenly spaced, so a count over a window is exact; ``poisson``: exponential gaps with mean 1/rate
    (independent arrivals, as from many clients), seeded.

    ``phase`` (in [0, 1)) moves the first slot ``phase / rate`` after ``start``. Users that start together must each
    get their own: without it 1,000 users at 0.15/s each (150/s in all) all sent at once every 6.7 s, bursts of
    1,000 that no rate of 150/s would make (bench/bench_scale.py).
    """

    def __init__(
        self, rate: float, *, process: str = "uniform", seed: int = 0, start: float | None = None, phase: float = 0.0
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if process not in PROCESSES:
            raise ValueError(f"unknown arrival process {process!r}")
        self.rate = rate
        self.process = process
        if not 0.0 <= phase < 1.0:
            raise ValueError(f"phase must be in [0, 1), got {phase}")
        self.start = (time.perf_counter() if start is None else start) + phase / rate
        self._rng = random.Random(seed)
        self.sent = 0  # schedule slots handed out so far
        self._next = self.start

    @property
    def next_due(self) -> float:
        return self._next

    def take(self) -> float:
        """The next intended send time; the schedule moves on by one slot."""
        due = self._next
        self.sent += 1
        if self.process == "uniform":
            self._next = self.start + self.sent / self.rate  # from start, so rounding never drifts
        else:
            self._next += self._rng.expovariate(self.rate)
        return due

    def due(self, now: float) -> list[float]:
        """Every intended time at or before ``now``, in order (a late generator catches up, nothing is skipped)."""
        out = []
        while self._next <= now:
            out.append(self.take())
        return out


@dataclass
class Counts:
    """What an open-loop schedule did, for one request type: slots due, sends made, late, dropped, send lag."""

    target_rate: float = 0.0  # the share of the total rate this node's users were asked for
    intended: int = 0
    sent: int = 0
    late: int = 0
    dropped: int = 0
    skipped: int = 0  # due, but the operation had nothing of its own to do yet (a delete before any insert): not sent
    lag_sum_ms: float = 0.0
    lag_max_ms: float = 0.0
    window_start: float = math.inf  # wall-clock (time.time) start of the earliest schedule
    window_end: float = 0.0  # wall-clock end of the latest schedule slot handed out
    streams: dict[str, float] = field(default_factory=dict)  # op -> rate, for --stream-rates schedules

    def started(self, rate: float, window_start: float, stream_op: str = "") -> None:
        """A schedule at ``rate`` began (``window_start``: its first slot, wall clock)."""
        self.target_rate += rate
        self.window_start = min(self.window_start, window_start)
        if stream_op:
            self.streams[stream_op] = self.streams.get(stream_op, 0.0) + rate

    def slot(self, window_end: float) -> None:
        """One slot came due (``window_end``: the end of its interval, wall clock)."""
        self.intended += 1
        self.window_end = max(self.window_end, window_end)

    def sent_one(self, lag_ms: float) -> None:
        self.sent += 1
        self.lag_sum_ms += lag_ms
        self.lag_max_ms = max(self.lag_max_ms, lag_ms)
        self.late += lag_ms > LATE_MS

    def add(self, other: Counts) -> None:
        self.target_rate += other.target_rate
        self.intended += other.intended
        self.sent += other.sent
        self.late += other.late
        self.dropped += other.dropped
        self.skipped += other.skipped
        self.lag_sum_ms += other.lag_sum_ms
        self.lag_max_ms = max(self.lag_max_ms, other.lag_max_ms)
        self.window_start = min(self.window_start, other.window_start)
        self.window_end = max(self.window_end, other.window_end)
        for op, rate in other.streams.items():
            self.streams[op] = self.streams.get(op, 0.0) + rate

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["window_start"] = self.window_start if math.isfinite(self.window_start) else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counts:
        c = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        if c.window_start is None:
            c.window_start = math.inf
        return c


def admit(counts: Counts | None, intended: float, in_flight: int, limit: int) -> bool:
    """One send that is due: dropped (False, counted) when ``limit`` calls of its user are still out (the server is
    not keeping up with the schedule), else counted as sent with how late it leaves (True)."""
    if in_flight >= limit:
        if counts is not None:
            counts.dropped += 1
        return False
    if counts is not None:
        counts.sent_one(lag_ms(intended))
    return True


def lag_ms(intended: float) -> float:
    """How late a send leaves, in milliseconds (never negative)."""
    return max((time.perf_counter() - intended) * 1000.0, 0.0)
