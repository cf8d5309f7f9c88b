"""Where a flow's time goes: each step of a user's flow (``loadgen.clients.flow``) as a merged statistic.

A flow is one Locust request row (request type ``flow``, name = the flow's name) whose ``context["steps"]`` holds the
milliseconds of each marked step, measured from the same ``perf_counter`` readings as the row's own time, so the steps
of one flow add up to its response time. This listener records every successful flow's steps in microsecond HDR
histograms, keyed by (flow, step); workers send deltas to the master, which writes ``flows.json``. Steps are a
statistic next to the requests, never requests themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.listeners import MergedListener, OutPath

FLOW_TYPE = "flow"  # the request type of a whole flow's row
PAYLOAD_FORMAT = "milvus-loadgen/flows-payload/v1"
RESULTS_FORMAT = "milvus-loadgen/flows/v1"
REPORT_KEY = "loadgen_flows"
TOTAL = "(total)"  # the series of whole flows, next to their steps: what the steps' shares are of


class FlowListener(MergedListener):
    """Step times of successful flows, per (flow name, step), merged on the master into ``flows.json``."""

    report_key = REPORT_KEY
    what = "flow step statistics"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.steps = LatencyHistograms()  # keyed (flow name, step name)
        self.order: dict[str, list[str]] = {}  # flow -> its steps in the order they were first marked
        super().__init__(environment, out_path)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None = None,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if request_type != FLOW_TYPE or exception is not None or response_time is None:
            return
        steps = (context or {}).get("steps")
        if not isinstance(steps, dict):
            return
        flow_ms = (context or {}).get("service_ms", response_time)  # open model: the flow's own time
        self.steps.record(name, TOTAL, float(flow_ms))
        known = self.order.setdefault(name, [])
        for step, ms in steps.items():
            if isinstance(ms, int | float):
                self.steps.record(name, str(step), float(ms))
                if step not in known:
                    known.append(str(step))

    def has_data(self) -> bool:
        return bool(self.steps)

    def to_payload(self) -> dict[str, Any]:
        return {"format": PAYLOAD_FORMAT, "order": self.order, "steps": self.steps.to_payload()}

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen flows payload: format {payload.get('format')!r}")
        self.steps.merge(LatencyHistograms.from_payload(payload["steps"]))
        for flow, steps in payload.get("order", {}).items():
            known = self.order.setdefault(str(flow), [])
            known += [str(s) for s in steps if s not in known]

    def reset(self) -> None:
        self.steps.reset()
        self.order = {}

    def results(self) -> dict[str, Any]:
        flows: dict[str, Any] = {}
        for flow in sorted({f for f, _ in self.steps.request_keys()}):
            total = self.steps.percentiles(flow, TOTAL)
            if not total["count"]:
                continue
            steps = []
            for step in self.order.get(flow, []):
                p = self.steps.percentiles(flow, step)
                share = p["mean_ms"] * p["count"] / (total["mean_ms"] * total["count"]) if total["mean_ms"] else 0.0
                steps.append({"step": step, **p, "share": share})
            flows[flow] = {"total": total, "steps": steps}
        return {"format": RESULTS_FORMAT, "flows": flows}


def read_results(path: Path) -> dict[str, Any]:
    """``flows.json`` as results.json's ``flows`` section: {flow: {"total": {...}, "steps": [...]}} ({} if none)."""
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("flows", {}))


def render_lines(flows: dict[str, Any]) -> list[str]:
    """One summary line per flow: each step's mean and share of the flow's time."""
    lines = []
    for flow, entry in sorted(flows.items()):
        parts = [f"{s['step']} {s['mean_ms']:.2f} ms ({100 * s['share']:.0f}%)" for s in entry.get("steps", [])]
        total = entry.get("total", {})
        lines.append(f"flow {flow}: mean {total.get('mean_ms', 0.0):.2f} ms = " + (" + ".join(parts) or "no steps"))
    return lines
