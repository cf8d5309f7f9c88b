"""Microsecond latency statistics: one HDR histogram per (request type, name), merged across workers.

Locust rounds response times to whole milliseconds below 100 ms, and a vector search takes 1-3 ms, so its
percentiles say "1" or "2". Here every successful request is recorded in microseconds (1 us .. 10 min, 3 significant
digits: exact to the microsecond below ~2 ms, within 0.1% above). Workers send what they recorded since their last
report, piggy-backed on Locust's own stats report; the master adds the deltas up. HDR buckets are deterministic, so the
merged percentiles equal those of one histogram fed every sample.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.stats.listeners import MergedListener, OutPath
from loadgen.stats.shape import ShapeTally

log = logging.getLogger("loadgen")

LOWEST_US = 1
HIGHEST_US = 600_000_000  # 10 minutes; anything slower is recorded as 10 minutes
SIGNIFICANT_DIGITS = 3
PERCENTILES: dict[str, float] = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0, "p99_9_ms": 99.9}
PAYLOAD_FORMAT = "milvus-loadgen/hdr/v1"
RESULTS_FORMAT = "milvus-loadgen/latency/v1"
REPORT_KEY = "loadgen_hdr"  # the key in a worker's stats report (``events.report_to_master``)


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_LAYOUT = _new_histogram()  # maps a bucket index to its value, for counts taken from any histogram of this layout


class Counts:
    """A cumulative histogram's bucket counts at one moment, sparse (only the buckets that hold calls): two of them
    give the calls between the two moments, with the same HDR percentiles as one histogram fed only those calls."""

    __slots__ = ("count", "index", "total")

    def __init__(self, index: np.ndarray, count: np.ndarray) -> None:
        self.index, self.count = index, count
        self.total = int(count.sum())

    @classmethod
    def of(cls, hist: HdrHistogram) -> Counts:
        dense = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
        index = np.flatnonzero(dense)
        return cls(index, dense[index].astype(np.int64))

    def since(self, earlier: Counts | None, percentiles: tuple[float, ...]) -> dict[str, Any]:
        """The calls recorded after ``earlier`` (None: all of them): their count and, when there are any, their
        percentiles in ms (``p<q>_ms``), by HDR's own rule (the highest value equivalent to the bucket that holds
        the q-th percent of the calls)."""
        delta = np.zeros(_LAYOUT.counts_len, dtype=np.int64)
        delta[self.index] += self.count
        if earlier is not None:
            delta[earlier.index] -= earlier.count
        total = int(delta.sum())
        out: dict[str, Any] = {"count": total}
        if total <= 0:
            return {"count": 0}
        running = np.cumsum(delta)
        for q in percentiles:
            target = max(int(q * total / 100 + 0.5), 1)
            index = int(np.searchsorted(running, target))
            value = _LAYOUT.get_highest_equivalent_value(_LAYOUT.get_value_from_index(index))
            out[f"p{q:g}_ms".replace(".", "_")] = value / 1000.0
        return out


class _Series:
    """One histogram and the exact sum of what it holds (HDR's own mean uses bucket midpoints)."""

    __slots__ = ("hist", "sum_us")

    def __init__(self) -> None:
        self.hist = _new_histogram()
        self.sum_us = 0

    def add(self, other: _Series) -> None:
        self.hist.add(other.hist)
        self.sum_us += other.sum_us


class LatencyHistograms:
    """Latency histograms keyed by ``(request_type, name)``; values go in as float milliseconds."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}

    def __bool__(self) -> bool:
        return any(s.hist.get_total_count() for s in self._series.values())

    def request_keys(self) -> list[tuple[str, str]]:
        return sorted(self._series)

    def record(self, request_type: str, name: str, ms: float) -> None:
        if not math.isfinite(ms):
            return
        us = min(max(round(ms * 1000.0), 0), HIGHEST_US)
        series = self._series.get((request_type, name))
        if series is None:
            series = self._series[(request_type, name)] = _Series()
        series.hist.record_value(us)
        series.sum_us += us

    def percentiles(self, request_type: str, name: str) -> dict[str, Any]:
        """count, mean_ms, min_ms, p50_ms, p90_ms, p95_ms, p99_ms, p99_9_ms, max_ms (all zero when nothing recorded)."""
        series = self._series.get((request_type, name))
        count = series.hist.get_total_count() if series is not None else 0
        if series is None or not count:
            return {"count": 0, "mean_ms": 0.0, "min_ms": 0.0, **dict.fromkeys(PERCENTILES, 0.0), "max_ms": 0.0}
        hist = series.hist
        values = hist.get_percentile_to_value_dict(list(PERCENTILES.values()))
        return {
            "count": count,
            "mean_ms": series.sum_us / count / 1000.0,
            "min_ms": hist.get_min_value() / 1000.0,
            **{key: values[q] / 1000.0 for key, q in PERCENTILES.items()},
            "max_ms": hist.get_max_value() / 1000.0,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One entry per (type, name) that recorded anything, sorted like ``summary.build_results`` sorts."""
        rows = [{"type": t, "name": n, **self.percentiles(t, n)} for t, n in self.request_keys()]
        return sorted((r for r in rows if r["count"]), key=lambda r: (r["name"], r["type"]))

    def counts(self, request_type: str, name: str) -> Counts | None:
        """The row's bucket counts now (None when it recorded nothing): what a window of recent calls is built from."""
        series = self._series.get((request_type, name))
        return Counts.of(series.hist) if series is not None and series.hist.get_total_count() else None

    def merge(self, other: LatencyHistograms) -> None:
        for key, theirs in other._series.items():
            if not theirs.hist.get_total_count():
                continue
            ours = self._series.get(key)
            if ours is None:
                ours = self._series[key] = _Series()
            ours.add(theirs)

    def to_payload(self) -> dict[str, Any]:
        """Plain data (str, int, list, dict) that survives JSON and msgpack; empty histograms are left out."""
        return {
            "format": PAYLOAD_FORMAT,
            "series": [
                {"type": t, "name": n, "hdr": s.hist.encode().decode("ascii"), "sum_us": s.sum_us}
                for (t, n), s in sorted(self._series.items())
                if s.hist.get_total_count()
            ],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> LatencyHistograms:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen histogram payload: format {payload.get('format')!r}")
        out = cls()
        for item in payload["series"]:
            series = _Series()
            series.hist.add(HdrHistogram.decode(item["hdr"]))  # into a fresh one: same layout as local histograms
            series.sum_us = int(item["sum_us"])
            key = (str(item["type"]), str(item["name"]))
            if key in out._series:
                out._series[key].add(series)
            else:
                out._series[key] = series
        return out

    def reset(self) -> None:
        self._series = {}


class HistogramListener(MergedListener):
    """Records successful requests in microseconds; workers send deltas to the master, which merges them.

    ``HistogramListener(environment, out_path=Path("results/latency.json"))`` attaches itself. The master (or the
    local runner) writes the merged percentiles to ``out_path`` when the test stops and again when Locust quits
    (after the workers' final reports); ``out_path=None`` writes nothing (read ``histograms`` instead).
    """

    report_key = REPORT_KEY
    what = "latency histograms"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.histograms = LatencyHistograms()
        # open model: the call's own time (from its actual start), next to the corrected latency in ``histograms``
        self.service = LatencyHistograms()
        # per request row: the time its calls spent computing embeddings (left out of the row's own latency)
        self.embedding = LatencyHistograms()
        # fan-out: how long each gathered batch took, keyed by (``<layer>-async-fanout``, ``<name>[k]``)
        self.batches = LatencyHistograms()
        self.skipped: dict[tuple[str, str], int] = {}  # tasks with nothing of their own to do yet (see clients.Skip)
        self.shape = ShapeTally()  # per row: query vectors sent (--nq), the answers' bytes (loadgen.stats.shape)
        super().__init__(environment, out_path)

    def on_request(  # type: ignore[override]
        self,
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        context = context or {}
        if "nq" in context or "response_bytes" in context:
            self.shape.record(request_type, name, context.get("nq"), context.get("response_bytes"))
        embed = context.get("embed_ms")
        if isinstance(embed, int | float):  # spent whether the store call then failed or not
            self.embedding.record(request_type, name, float(embed))
        if exception is None and response_time is not None:
            self.histograms.record(request_type, name, float(response_time))
            service = context.get("service_ms")
            if isinstance(service, int | float):
                self.service.record(request_type, name, float(service))

    def skip(self, request_type: str, name: str) -> None:
        self.skipped[(request_type, name)] = self.skipped.get((request_type, name), 0) + 1

    def _families(self) -> dict[str, LatencyHistograms]:
        return {"service": self.service, "embedding": self.embedding, "batches": self.batches}

    def has_data(self) -> bool:
        families = any(map(bool, self._families().values()))
        return bool(self.histograms) or families or bool(self.skipped) or bool(self.shape)

    def to_payload(self) -> dict[str, Any]:
        payload = self.histograms.to_payload()
        for key, family in self._families().items():
            if family:
                payload[key] = family.to_payload()
        if self.skipped:
            payload["skipped"] = [[t, n, c] for (t, n), c in self.skipped.items()]
        if self.shape:
            payload["shape"] = self.shape.to_payload()
        return payload

    def merge_payload(self, payload: dict[str, Any]) -> None:
        self.histograms.merge(LatencyHistograms.from_payload(payload))
        for key, family in self._families().items():
            if payload.get(key):
                family.merge(LatencyHistograms.from_payload(payload[key]))
        for t, n, c in payload.get("skipped", []):
            self.skipped[(str(t), str(n))] = self.skipped.get((str(t), str(n)), 0) + int(c)
        self.shape.merge_payload(payload.get("shape", []))

    def reset(self) -> None:
        self.histograms.reset()
        for family in self._families().values():
            family.reset()
        self.skipped = {}
        self.shape.reset()

    def results(self) -> dict[str, Any]:
        return {
            "format": RESULTS_FORMAT,
            "resolution_us": LOWEST_US,
            "significant_digits": SIGNIFICANT_DIGITS,
            "requests": self.histograms.summary(),
            "histograms": self.histograms.to_payload(),  # to merge runs or compute other percentiles later
            # open model only: latency from each call's actual start (what a closed-loop client would report)
            **({"service_requests": self.service.summary()} if self.service else {}),
            **({"embedding_requests": self.embedding.summary()} if self.embedding else {}),
            **({"batches": self.batches.summary()} if self.batches else {}),
        }
