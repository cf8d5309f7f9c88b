"""Search recall as a merged statistic: the listener that gathers per-search recall into ``RecallStats``, merges
workers' values on the master and writes ``recall.json``.

A store that knows a search's query and its hits reports ``{"recall": r}`` through the request's ``context``; recall
is a statistic next to the requests, never a request itself. A search of ``--nq`` query vectors reports a list, one
recall per query vector, each against its own ground truth: every figure here is per query vector (its ``count`` is
the query vectors scored, not the calls). The queries and ground truth: ``loadgen.workload.truth``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from loadgen.stats.listeners import MergedListener, OutPath
from loadgen.workload.groundtruth import RecallStats

log = logging.getLogger("loadgen")

PAYLOAD_FORMAT = "milvus-loadgen/recall-payload/v1"
RESULTS_FORMAT = "milvus-loadgen/recall/v1"
REPORT_KEY = "loadgen_recall"  # the key in a worker's stats report (``events.report_to_master``)


# ---- the listener --------------------------------------------------------------------------------------------


class RecallListener(MergedListener):
    """Collects ``context["recall"]`` of successful requests per (request type, name) into ``RecallStats``;
    workers' values are merged on the master, which writes ``recall.json`` (see ``loadgen.stats.listeners``)."""

    report_key = REPORT_KEY
    what = "recall statistics"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.stats: dict[tuple[str, str], RecallStats] = {}
        # per wall-clock second: [sum, count]. Recall that drifts during a run (searches that ran before the index
        # was loaded score 1.000 by brute force) shows as a first second unlike the last one
        self.seconds: dict[tuple[str, str], dict[int, list[float]]] = {}
        super().__init__(environment, out_path)

    def _series(self, key: tuple[str, str]) -> RecallStats:
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = RecallStats()
        return stats

    def on_request(
        self,
        request_type: str,
        name: str,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        value = (context or {}).get("recall")
        if exception is not None or request_type == "embedding" or value is None:
            return
        values = value if isinstance(value, list | tuple) else [value]
        scored = [float(x) for x in values if isinstance(x, int | float)]
        if scored:
            series = self._series((request_type, name))
            for x in scored:
                series.add(x)
            self._add_second((request_type, name), int(time.time()), sum(scored), len(scored))

    def _add_second(self, key: tuple[str, str], second: int, total: float, count: int) -> None:
        bucket = self.seconds.setdefault(key, {}).setdefault(second, [0.0, 0])
        bucket[0] += total
        bucket[1] += count

    def per_second(self, key: tuple[str, str]) -> list[list[float]]:
        """[[unix second, searches, mean recall], ...] in time order."""
        return [[t, c, round(v / c, 6)] for t, (v, c) in sorted(self.seconds.get(key, {}).items()) if c]

    def has_data(self) -> bool:
        return any(s.count for s in self.stats.values())

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": PAYLOAD_FORMAT,
            "series": [
                {"type": t, "name": n, **s.to_dict(), "seconds": self._raw_seconds((t, n))}
                for (t, n), s in sorted(self.stats.items())
                if s.count
            ],
        }

    def _raw_seconds(self, key: tuple[str, str]) -> list[list[float]]:
        return [[second, total, count] for second, (total, count) in self.seconds.get(key, {}).items()]

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen recall payload: format {payload.get('format')!r}")
        for item in payload["series"]:
            key = (str(item["type"]), str(item["name"]))
            self._series(key).merge(RecallStats.from_dict(item))
            for second, total, count in item.get("seconds", []):  # absent from an older worker's payload
                self._add_second(key, int(second), float(total), int(count))

    def reset(self) -> None:
        self.stats = {}
        self.seconds = {}

    def results(self) -> dict[str, Any]:
        rows = [
            {"type": t, "name": n, **s.summary(), "histogram": s.to_dict(), "per_second": self.per_second((t, n))}
            for (t, n), s in sorted(self.stats.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            if s.count
        ]
        return {"format": RESULTS_FORMAT, "requests": rows}


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """``recall.json`` as results.json's ``recall``: {"<type> <name>": {count, mean, min, p1, p5, p10, p50}}."""
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for r in json.loads(path.read_text()).get("requests", []):
        if r.get("count"):
            keys = ("mean", "p1", "p5", "p10", "p50", "min", "count")
            out[f"{r['type']} {r['name']}"] = {k: r[k] for k in keys if k in r}
    return out


def recall_section(listener: RecallListener) -> dict[str, dict[str, Any]]:
    """results.json's ``recall``: {"<type> <name>": {count, mean, min, p1, p5, p10, p50}}, from the merged
    statistics."""
    keys = ("mean", "p1", "p5", "p10", "p50", "min")
    return {
        f"{t} {n}": {**{k: v for k, v in s.summary().items() if k in keys}, "count": s.count}
        for (t, n), s in sorted(listener.stats.items())
        if s.count
    }
