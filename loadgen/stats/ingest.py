"""Ingest readiness: how long after the client's acknowledgement an insert is searchable, then indexed, and how far
the index lags behind the writes over the run (``--ingest-readiness``; the pymilvus layer's inserts).

The figures, defined once (results.json's ``ingest``, the summary, the report, ``--check-max-index-lag-s``):

- **ack**: the moment the insert call returned (``context["ingest_ack"]``, ``perf_counter``, stamped as its outcome
  settles), with its ids (``context["ingest_ids"]``).
- **searchable**: the end of the first visibility query that returned every id of the write. One query
  (``id in [...]`` at ``--consistency-level``) every ``POLL_S`` covers every write of the process not seen yet.
- **indexed**: the write is searchable, and ``describe_index`` (polled every ``INDEX_POLL_S``) counts as many rows
  indexed since the process's first poll as the process had acknowledged up to and including this write: the index
  is taken to cover rows in the order they were written (a segment is sealed, then indexed, in that order). So
  ack <= searchable <= indexed for every write, by construction.
- Each write is counted once per stage: in the stage's distribution (ms after ack), or, when the test stops first,
  in ``not_searchable`` / ``not_indexed``. Milvus indexes sealed segments only: a small stream that never fills
  a segment (and is never flushed) stays unindexed, which is what these counts then say.
- **index lag**, at every index poll: the seconds since the oldest acknowledged write the index does not cover was
  acknowledged (0 when it covers them all), and the rows it does not cover; ``max_s`` is the checked figure.

Exact with one Locust process (``loadgen run`` without ``--processes``): with several, each process counts the
server's indexed rows against its own writes, and other processes' rows make its indexed times read early.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.listeners import MergedListener, OutPath

log = logging.getLogger("loadgen")
PAYLOAD_FORMAT = "milvus-loadgen/ingest-payload/v1"
REPORT_KEY = "loadgen_ingest"
POLL_S = 0.02  # between visibility queries: the searchable stage's resolution (a Strong query waits longer itself)
INDEX_POLL_S = 0.5  # between describe_index calls: the indexed stage's resolution
MAX_IDS = 2000  # ids per visibility query: the oldest unseen writes first
STAGES = ("searchable", "indexed")


@dataclass
class Write:
    ack: float
    ids: tuple[int, ...]
    upto: int  # rows this process acknowledged up to and including this write
    searchable: float | None = None
    covered: float | None = None  # the index poll that first counted it


class IngestStats:
    """What one node recorded since its last report (a worker's) or in all (the master's merge)."""

    def __init__(self) -> None:
        self.latency = LatencyHistograms()  # ("ingest", stage) -> ms after ack
        self.counts: dict[str, int] = {}  # writes, rows, not_searchable, not_indexed, poll_errors
        self.lag: dict[int, list[float]] = {}  # unix second -> [max seconds behind, max rows behind]

    def __bool__(self) -> bool:
        return bool(self.counts) or bool(self.lag)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def lag_sample(self, second: int, seconds: float, rows: float) -> None:
        now = self.lag.setdefault(second, [0.0, 0.0])
        now[0], now[1] = max(now[0], seconds), max(now[1], rows)

    def to_payload(self) -> dict[str, Any]:
        lag = [[t, s, r] for t, (s, r) in sorted(self.lag.items())]
        return {"format": PAYLOAD_FORMAT, "latency": self.latency.to_payload(), "counts": self.counts, "lag": lag}

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen ingest payload: format {payload.get('format')!r}")
        self.latency.merge(LatencyHistograms.from_payload(payload["latency"]))
        for key, n in payload.get("counts", {}).items():
            self.add(str(key), int(n))
        for second, seconds, rows in payload.get("lag", []):
            self.lag_sample(int(second), float(seconds), float(rows))

    def results(self, consistency_level: str = "") -> dict[str, Any]:
        if not self:
            return {}
        c = self.counts
        out: dict[str, Any] = {"writes": c.get("writes", 0), "rows": c.get("rows", 0)}
        for stage in STAGES:
            out[stage] = self.latency.percentiles("ingest", stage)
            out[f"not_{stage}"] = c.get(f"not_{stage}", 0)
        samples = [v for _, v in sorted(self.lag.items())]
        out["index_lag"] = {
            "max_s": max((s for s, _ in samples), default=0.0),
            "mean_s": sum(s for s, _ in samples) / len(samples) if samples else 0.0,
            "max_rows": int(max((r for _, r in samples), default=0)),
            "per_second": [[t, round(s, 3), int(r)] for t, (s, r) in sorted(self.lag.items())],
        }
        out.update(consistency_level=consistency_level, poll_s=POLL_S, index_poll_s=INDEX_POLL_S,
                   poll_errors=c.get("poll_errors", 0))  # fmt: skip
        return out


class Tracker:
    """A process's writes on their way to searchable and indexed, and the polls that move them (one greenlet)."""

    def __init__(self, stats: IngestStats, settings: Any, name: str) -> None:
        self.stats, self.settings, self.name = stats, settings, name
        self.unseen: collections.deque[Write] = collections.deque()  # not searchable yet, in ack order
        self.uncovered: collections.deque[Write] = collections.deque()  # not counted by the index yet
        self.waiting: list[Write] = []  # counted by the index, not searchable yet
        self.acked_rows = 0
        self.base: int | None = None  # indexed rows at the first index poll
        self.index: str | None = None
        self.client: Any = None
        self.greenlet: Any = None
        self.running = False

    def acked(self, ack: float, ids: tuple[int, ...]) -> None:
        self.acked_rows += len(ids)
        w = Write(ack, ids, self.acked_rows)
        self.unseen.append(w)
        self.uncovered.append(w)
        self.stats.add("writes")
        self.stats.add("rows", len(ids))

    def start(self) -> None:
        import gevent

        self.running = True
        self.greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        import gevent

        from loadgen import runtime
        from loadgen.milvus import collection

        self.client = runtime.off_hub(collection.connect, self.settings)
        next_index = 0.0
        while self.running:
            gevent.sleep(POLL_S)
            try:
                self.poll_searchable()
                if time.perf_counter() >= next_index:
                    next_index = time.perf_counter() + INDEX_POLL_S
                    self.poll_index()
            except Exception as exc:  # a slow or restarting server: the run goes on, the stages wait
                self.stats.add("poll_errors")
                if self.stats.counts["poll_errors"] == 1:
                    log.warning("ingest readiness: a poll of %s failed: %s", self.name, exc)

    def poll_searchable(self) -> None:
        batch: list[Write] = []
        ids: list[int] = []
        for w in self.unseen:
            if len(ids) + len(w.ids) > MAX_IDS and batch:
                break
            batch.append(w)
            ids += w.ids
        if not batch:
            return
        s = self.settings
        found = self.client.query(self.name, filter=f"id in {ids}", output_fields=["id"],
                                  consistency_level=s.consistency_level, timeout=s.timeout)  # fmt: skip
        answered = time.perf_counter()
        got = {int(row["id"]) for row in found}
        for w in batch:
            if w.searchable is None and got.issuperset(w.ids):
                w.searchable = answered
                self.stats.latency.record("ingest", "searchable", (answered - w.ack) * 1000.0)
        self.unseen = collections.deque(w for w in self.unseen if w.searchable is None)
        self._settle()

    def poll_index(self) -> None:
        s = self.settings
        if self.index is None:
            names = self.client.list_indexes(self.name, field_name="vector", timeout=s.timeout)
            self.index = str(names[0]) if names else ""
        if not self.index:
            return
        indexed = int(self.client.describe_index(self.name, self.index, timeout=s.timeout).get("indexed_rows", 0))
        answered = time.perf_counter()
        if self.base is None:
            self.base = indexed
        covered = indexed - self.base
        while self.uncovered and self.uncovered[0].upto <= covered:
            w = self.uncovered.popleft()
            w.covered = answered
            self.waiting.append(w)
        self._settle()
        oldest = self.uncovered[0].ack if self.uncovered else answered
        behind = max(self.acked_rows - covered, 0) if self.uncovered else 0
        self.stats.lag_sample(int(time.time()), answered - oldest, behind)

    def _settle(self) -> None:
        """Covered writes that are searchable too are indexed: at the later of the two moments."""
        still = []
        for w in self.waiting:
            if w.searchable is None or w.covered is None:
                still.append(w)
                continue
            self.stats.latency.record("ingest", "indexed", (max(w.searchable, w.covered) - w.ack) * 1000.0)
        self.waiting = still

    def stop(self) -> None:
        """Count what the test's end left at each stage; every write is then in each stage's figures once."""
        self.running = False
        if self.greenlet is not None:
            self.greenlet.kill(block=True)
            self.greenlet = None
        if self.client is not None:
            self.client.close()
            self.client = None
        self.stats.add("not_searchable", len(self.unseen))
        self.stats.add("not_indexed", len(self.uncovered) + len(self.waiting))
        self.unseen.clear()
        self.uncovered.clear()
        self.waiting = []


class IngestListener(MergedListener):
    """Takes the acknowledged inserts from the request events of this process's users, starts the tracker at the
    first, merges workers' figures on the master."""

    report_key = REPORT_KEY
    what = "ingest readiness statistics"

    def __init__(self, environment: Any, settings_of: Any, out_path: OutPath = None) -> None:
        self.stats = IngestStats()
        self.settings_of = settings_of  # () -> the test's Settings
        self.tracker: Tracker | None = None
        super().__init__(environment, out_path)

    def on_request(self, request_type: str, name: str, exception: BaseException | None = None,
                   context: dict[str, Any] | None = None, **_: Any) -> None:  # fmt: skip
        if exception is not None or not context or "ingest_ack" not in context:
            return
        if self.tracker is None:
            self.tracker = Tracker(self.stats, self.settings_of(), str(context["ingest_collection"]))
            self.tracker.start()
        self.tracker.acked(float(context["ingest_ack"]), tuple(context["ingest_ids"]))

    def on_test_stop(self, **kw: Any) -> None:
        if self.tracker is not None:
            self.tracker.stop()
            self.tracker = None
        super().on_test_stop(**kw)

    def has_data(self) -> bool:
        return bool(self.stats)

    def to_payload(self) -> dict[str, Any]:
        return self.stats.to_payload()

    def merge_payload(self, payload: dict[str, Any]) -> None:
        self.stats.merge_payload(payload)

    def reset(self) -> None:
        """The figures recorded so far (a worker's, sent to the master); the tracker's writes in flight stay."""
        self.stats = IngestStats()
        if self.tracker is not None:
            self.tracker.stats = self.stats

    def on_test_start(self, **_: Any) -> None:
        if self.tracker is not None:
            self.tracker.stop()
            self.tracker = None
        self.reset()

    def results(self) -> dict[str, Any]:
        settings = self.settings_of()
        return self.stats.results(settings.consistency_level if settings is not None else "")


def max_lag_s(ingest: dict[str, Any] | None) -> float | None:
    """The checked figure: the largest index lag of the run (None: no ingest readiness measured). A run in which
    the index took none of its writes has no bound on its lag (it only grew, as long as the run lasted): infinite,
    so no limit holds it however short the run was."""
    if not ingest or not ingest.get("writes"):
        return None
    if not (ingest.get("indexed") or {}).get("count"):
        return math.inf
    return float(ingest["index_lag"]["max_s"])


def lag_text(ingest: dict[str, Any] | None, lag: float) -> str:
    """``max_lag_s`` in words: ``index lag 2.31 s``, or for a run whose writes the index never took, how long
    that went on."""
    if math.isinf(lag):
        seen = float(((ingest or {}).get("index_lag") or {}).get("max_s", 0.0))
        return f"index lag >= {seen:.2f} s and growing (nothing indexed)"
    return f"index lag {lag:.2f} s"


def lines(ingest: dict[str, Any] | None) -> list[str]:
    """The summary's lines for results.json's ``ingest`` (none without one)."""
    if not ingest or not ingest.get("writes"):
        return []
    out = [f"ingest readiness ({ingest.get('consistency_level', '')}): {ingest['writes']} inserts, {ingest['rows']} "
           "rows; ms after the acknowledgement"]  # fmt: skip
    for stage in STAGES:
        p = ingest[stage]
        got = f"p50 {p['p50_ms']:.1f}, p99 {p['p99_ms']:.1f}, max {p['max_ms']:.1f}" if p["count"] else "none"
        out.append(f"  {stage}: {got} ({p['count']} writes; {ingest[f'not_{stage}']} not {stage} when the test ended)")
    lag = ingest["index_lag"]
    out.append(f"  index lag: max {lag['max_s']:.2f} s, mean {lag['mean_s']:.2f} s, max {lag['max_rows']} rows behind")
    return out
