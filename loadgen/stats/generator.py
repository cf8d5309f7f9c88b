"""The generator watches itself: each load-generating process (a worker, or the local runner) samples its CPU share
and the lag of its two event loops, merged on the master like the other statistics (``MergedListener``).

Why: a load generator that is out of CPU, or whose gevent hub or asyncio loop runs late, measures itself: its
latencies then include the time a finished call waited for the process to notice. One Python process does at most
about one core of Python work (the GIL), so "CPU share near one core" is the saturation signal, and a periodic timer
that fires late (its sleep overshoots) is the direct one.

- CPU: ``os.times()`` user + system seconds of the whole process (all threads) over wall-clock seconds;
- gevent hub lag: a greenlet sleeps ``SAMPLE_INTERVAL_S`` and records how much later than asked it woke; the
  generator is saturated when most wake-ups are late (``LATE_SHARE_SATURATED``) or CPU is near a core;
- asyncio loop lag: a ``call_later`` chain on ``loadgen.runtime.bridge``'s loop, attached only once something started
  that loop (after any ``--processes`` fork; a sync-only run never starts the loop for a probe).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.stats.listeners import MergedListener, OutPath

PAYLOAD_FORMAT = "milvus-loadgen/generator-payload/v1"
RESULTS_FORMAT = "milvus-loadgen/generator/v1"
REPORT_KEY = "loadgen_generator"
SAMPLE_INTERVAL_S = 0.5
CPU_SATURATED = 0.9  # share of one core over the run
LATE_MS = 20.0  # a probe that wakes this much later than asked was kept waiting by the work around it
LATE_SHARE_SATURATED = 0.5  # saturated when at least this share of a loop's wake-ups were late (a one-off pause,
# such as the start of the users or a GC, is not saturation; a mean would let one spike decide)
MIN_JUDGED_S = 5.0  # a shorter span is not judged: its few wake-ups are mostly the start (spawning users, connecting),
# and two late ones of four would call a busy start "saturated" (a 2 s capacity step in CI did)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Lag:
    """Wake-up lags of one periodic timer, in milliseconds."""

    count: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    late: int = 0  # wake-ups later than LATE_MS

    def add(self, ms: float) -> None:
        ms = max(ms, 0.0)
        self.count, self.sum_ms, self.max_ms = self.count + 1, self.sum_ms + ms, max(self.max_ms, ms)
        self.late += ms > LATE_MS

    def merge(self, other: Lag) -> None:
        self.count, self.sum_ms = self.count + other.count, self.sum_ms + other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.late += other.late

    @property
    def late_share(self) -> float:
        return self.late / self.count if self.count else 0.0

    @property
    def mean_ms(self) -> float:
        return self.sum_ms / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"count": self.count, "sum_ms": self.sum_ms, "max_ms": self.max_ms, "late": self.late}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Lag:
        return cls(int(d["count"]), float(d["sum_ms"]), float(d["max_ms"]), int(d["late"]))

    def summary(self) -> dict[str, float]:
        return {"mean": self.mean_ms, "max": self.max_ms, "samples": self.count, "late_share": self.late_share}


@dataclass
class NodeLoad:
    """One process's load over some span: CPU seconds in wall seconds, the busiest sample, both loops' lags."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    cpu_share_max: float = 0.0
    cpu_share_last: float = 0.0
    hub: Lag | None = None
    loop: Lag | None = None

    def __post_init__(self) -> None:
        self.hub = self.hub or Lag()
        self.loop = self.loop or Lag()

    def merge(self, other: NodeLoad) -> None:
        assert self.hub is not None and self.loop is not None and other.hub is not None and other.loop is not None
        self.cpu_s += other.cpu_s
        self.wall_s += other.wall_s
        self.cpu_share_max = max(self.cpu_share_max, other.cpu_share_max)
        self.cpu_share_last = other.cpu_share_last or self.cpu_share_last
        self.hub.merge(other.hub)
        self.loop.merge(other.loop)

    def to_dict(self) -> dict[str, Any]:
        assert self.hub is not None and self.loop is not None
        return {
            "cpu_s": self.cpu_s, "wall_s": self.wall_s, "cpu_share_max": self.cpu_share_max,
            "cpu_share_last": self.cpu_share_last, "hub": self.hub.to_dict(), "loop": self.loop.to_dict(),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeLoad:
        return cls(
            float(d["cpu_s"]), float(d["wall_s"]), float(d["cpu_share_max"]), float(d.get("cpu_share_last", 0.0)),
            Lag.from_dict(d["hub"]), Lag.from_dict(d["loop"]),
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        assert self.hub is not None and self.loop is not None
        share = self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0
        why: list[str] = []
        judged = self.wall_s >= MIN_JUDGED_S  # else too short to tell saturation from the start of the run
        if judged and share >= CPU_SATURATED:
            why.append(f"{share:.2f} of a core")
        for loop_name, lag in (("gevent hub", self.hub), ("asyncio loop", self.loop)):
            if judged and lag.count and lag.late_share >= LATE_SHARE_SATURATED:
                why.append(f"{loop_name} late in {lag.late_share:.0%} of wake-ups (mean {lag.mean_ms:.0f} ms)")
        return {
            "cpu_share": share, "cpu_share_max": self.cpu_share_max, "cpu_share_last": self.cpu_share_last,
            "wall_s": self.wall_s,
            "hub_lag_ms": self.hub.summary(), "loop_lag_ms": self.loop.summary(),
            "judged": judged, "saturated": bool(why), "why": why,
        }  # fmt: skip


class _Probe:
    """This process's sampler: a greenlet for CPU and the hub, a ``call_later`` chain for the asyncio loop."""

    def __init__(self) -> None:
        self.pending = NodeLoad()
        self._lock = threading.Lock()  # the loop probe runs on the asyncio thread (a real OS thread)
        self._mark_cpu, self._mark_wall = _cpu_seconds(), time.perf_counter()
        self._running = False
        self._greenlet: Any = None
        self._loop_attached: Any = None

    def start(self) -> None:
        import gevent

        self._running = True
        self._mark_cpu, self._mark_wall = _cpu_seconds(), time.perf_counter()
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        self._running = False
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def take(self) -> NodeLoad:
        """What was sampled since the last take, with CPU and wall time up to now."""
        with self._lock:
            self._fold_cpu()
            out, self.pending = self.pending, NodeLoad()
        return out

    def _fold_cpu(self) -> None:
        cpu, wall = _cpu_seconds(), time.perf_counter()
        dcpu, dwall = cpu - self._mark_cpu, wall - self._mark_wall
        self._mark_cpu, self._mark_wall = cpu, wall
        if dwall > 0:
            self.pending.cpu_s += dcpu
            self.pending.wall_s += dwall
            share = dcpu / dwall
            self.pending.cpu_share_last = share
            if dwall >= SAMPLE_INTERVAL_S / 2:  # a share over a sliver of time is noise
                self.pending.cpu_share_max = max(self.pending.cpu_share_max, share)

    def _run(self) -> None:
        import gevent

        while self._running:
            asked = time.perf_counter()
            gevent.sleep(SAMPLE_INTERVAL_S)
            late_ms = (time.perf_counter() - asked - SAMPLE_INTERVAL_S) * 1000.0
            with self._lock:
                assert self.pending.hub is not None
                self.pending.hub.add(late_ms)
                self._fold_cpu()
            self._attach_loop()

    def _attach_loop(self) -> None:
        from loadgen.runtime import bridge

        loop = bridge.started_loop
        if loop is None or loop is self._loop_attached:
            return
        self._loop_attached = loop

        def tick(due: float) -> None:  # on the asyncio thread
            if not self._running or loop is not self._loop_attached:
                return
            now = loop.time()
            with self._lock:
                assert self.pending.loop is not None
                self.pending.loop.add((now - due) * 1000.0)
            loop.call_at(now + SAMPLE_INTERVAL_S, tick, now + SAMPLE_INTERVAL_S)

        loop.call_soon_threadsafe(lambda: loop.call_at(loop.time() + SAMPLE_INTERVAL_S, tick,
                                                       loop.time() + SAMPLE_INTERVAL_S))  # fmt: skip


class GeneratorStats(MergedListener):
    """Per load-generating node (worker id, or ``local``): CPU share and loop lags over the run; the master merges
    the workers' reports and writes ``generator.json`` with a ``saturated`` flag and one line saying so."""

    report_key = REPORT_KEY
    what = "generator load"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.nodes: dict[str, NodeLoad] = {}
        self.probe: _Probe | None = None
        super().__init__(environment, out_path)

    def _node_id(self) -> str:
        from locust.runners import WorkerRunner

        runner = self.environment.runner
        return str(runner.client_id) if isinstance(runner, WorkerRunner) else "local"

    def _generates_load(self) -> bool:
        from locust.runners import MasterRunner

        return not isinstance(self.environment.runner, MasterRunner)

    def on_request(self, request_type: str, name: str, **kwargs: Any) -> None:
        """Nothing per request: the probe samples on its own clock."""

    def on_test_start(self, **_: Any) -> None:
        self.nodes = {}
        if self.probe is not None:
            self.probe.stop()
        if self._generates_load():
            self.probe = _Probe()  # created here, in the process that runs the users: after any fork
            self.probe.start()

    def on_test_stop(self, **_: Any) -> None:
        self._fold_local()
        if self.probe is not None:
            self.probe.stop()
            self.probe = None  # idle time after the test is not the generator's load
        super().on_test_stop()

    def _fold_local(self) -> None:
        if self.probe is not None and self._generates_load():
            self.nodes.setdefault(self._node_id(), NodeLoad()).merge(self.probe.take())

    def has_data(self) -> bool:
        self._fold_local()
        return any(n.wall_s > 0 for n in self.nodes.values())

    def to_payload(self) -> dict[str, Any]:
        return {"format": PAYLOAD_FORMAT, "nodes": {k: n.to_dict() for k, n in self.nodes.items()}}

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen generator payload: format {payload.get('format')!r}")
        for node, d in payload["nodes"].items():
            self.nodes.setdefault(str(node), NodeLoad()).merge(NodeLoad.from_dict(d))

    def reset(self) -> None:
        """On a worker after each report: what was sent is forgotten (the probe keeps sampling)."""
        self.nodes = {}

    def on_stats_reset(self, **_: Any) -> None:
        """The load before the reset (the ramp-up, a warm-up) is dropped with the figures it went with."""
        if self.probe is not None:
            self.probe.take()
        self.nodes = {}

    def live(self) -> dict[str, dict[str, Any]]:
        """Per node, the figures so far (the web UI, the Prometheus export)."""
        self._fold_local()
        return {k: n.summary() for k, n in sorted(self.nodes.items())}

    def results(self) -> dict[str, Any]:
        return section(self.live())


def section(nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``generator`` section: per node figures, ``saturated`` if any node is, and the one line to show."""
    busy = {k: n for k, n in nodes.items() if n["saturated"]}
    line = ""
    if busy:
        first, figures = next(iter(busy.items()))
        more = f" and {len(busy) - 1} more" if len(busy) > 1 else ""
        line = (
            f"generator saturated ({'local runner' if first == 'local' else 'worker ' + first}{more}: "
            f"{', '.join(figures['why'])}): these figures measure the generator, not Milvus; add --processes or workers"
        )
    return {"format": RESULTS_FORMAT, "nodes": nodes, "saturated": bool(busy), "line": line}


def read_section(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text()) if path.exists() else {}
