"""The open model's send counts as a merged statistic: per request type, the slots due, sends made, late and
dropped (``loadgen.workload.arrival_rate.Counts``); workers send deltas, the master adds them up."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from loadgen.stats.listeners import MergedListener, OutPath
from loadgen.workload.arrival_rate import Counts

PAYLOAD_FORMAT = "milvus-loadgen/arrivals-payload/v1"
RESULTS_FORMAT = "milvus-loadgen/open-loop/v1"
REPORT_KEY = "loadgen_arrivals"


class ArrivalStats(MergedListener):
    """Per request type (``pymilvus``, ``pymilvus-async``, ... with ``[stream]`` for background streams) counts of
    open-loop sends; workers send deltas, the master adds them up and writes ``open_loop.json``."""

    report_key = REPORT_KEY
    what = "open-loop counts"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.counts: dict[str, Counts] = {}
        super().__init__(environment, out_path)

    def on_request(self, request_type: str, name: str, **kwargs: Any) -> None:
        """Counts come from the pacers (``schedule``, ``sent``...), not from request events."""

    def of(self, kind: str) -> Counts:
        found = self.counts.get(kind)
        if found is None:
            found = self.counts[kind] = Counts()
        return found

    def has_data(self) -> bool:
        return any(c.intended or c.target_rate for c in self.counts.values())

    def to_payload(self) -> dict[str, Any]:
        return {"format": PAYLOAD_FORMAT, "counts": {k: c.to_dict() for k, c in self.counts.items()}}

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen arrivals payload: format {payload.get('format')!r}")
        for kind, d in payload["counts"].items():
            self.of(str(kind)).add(Counts.from_dict(d))

    def reset(self) -> None:
        self.counts = {}

    def on_stats_reset(self, **_: Any) -> None:
        """The schedules go on: their rates stay, their counts start again, and their window starts now."""
        now = time.time()
        self.counts = {
            kind: Counts(target_rate=c.target_rate, window_start=now if c.target_rate else math.inf,
                         streams=dict(c.streams))
            for kind, c in self.counts.items()
        }  # fmt: skip

    def results(self) -> dict[str, Any]:
        return {"format": RESULTS_FORMAT, "by_type": summarize(self.counts)}


def summarize(counts: dict[str, Counts]) -> dict[str, dict[str, Any]]:
    """Per kind: the counts, the mean send lag and the achieved send rate over the schedule's window."""
    out: dict[str, dict[str, Any]] = {}
    for kind, c in sorted(counts.items()):
        window = c.window_end - c.window_start if math.isfinite(c.window_start) else 0.0
        out[kind] = {
            "target_rate": c.target_rate,
            "intended": c.intended,
            "sent": c.sent,
            "late": c.late,
            "dropped": c.dropped,
            "skipped": c.skipped,
            "mean_send_lag_ms": c.lag_sum_ms / c.sent if c.sent else 0.0,
            "max_send_lag_ms": c.lag_max_ms,
            "window_s": window,
            "window_start": c.window_start if math.isfinite(c.window_start) else None,
            "window_end": c.window_end,
            "sent_rate": c.sent / window if window > 0 else 0.0,
            **({"streams": c.streams} if c.streams else {}),
        }
    return out


def read_results(path: Path) -> dict[str, Any]:
    """``open_loop.json`` as results.json's ``open_loop`` section ({} when the run was closed-loop)."""
    if not path.exists():
        return {}
    by_type = json.loads(path.read_text()).get("by_type", {})
    return {"by_type": by_type} if by_type else {}
