"""The Vector DB tab's table: run status first, then one row per (layer, operation) with sync and async side by side,
from one results document (``hooks.current_results``). Kept apart from ``tab.py`` (which wires Locust's web UI and the
hooks) so that the rows and the charts built from them are unit-tested without Locust's event machinery."""

from __future__ import annotations

from typing import Any

from loadgen.clients import row_operation
from loadgen.milvus import preparation
from loadgen.stats import drivers, resets

RESULTS_ROUTE = "/loadgen/results.json"
REPORT_ROUTE = "/loadgen/report.html"
_PERCENTILES = ("p50", "p95", "p99")
_LAYER_ORDER = {
    "run": 0, "open loop": 1, "stream": 2, "report": 3, "pymilvus": 4, "langchain": 5, "llamaindex": 6, "embedding": 7,
}  # fmt: skip


def operation_of(request_type: str, name: str) -> tuple[str, str, str]:
    """(layer, operation, side) of one request row, from the operation tables, so that sync and async twins share
    a table row; fan-out calls (``<layer>-async-fanout``) have a row of their own: they are another concurrency."""
    found = row_operation(request_type, name)
    if found is None:  # a row of a user's own locustfile
        return request_type, name, "sync"
    layer, op, flavour = found
    return (layer + " fan-out", op, "async") if flavour == "fanout" else (layer, op, flavour)


def _status_rows(environment: Any, state: Any, doc: dict[str, Any]) -> list[dict[str, Any]]:
    runner = environment.runner
    t = doc["totals"]
    phase = getattr(state, "phase", "") or (str(runner.state) if runner else "no runner")
    text = (
        f"{phase}, {runner.user_count if runner else 0} users; "
        f"{t['requests']} calls, {t['failures']} failed ({t['fail_ratio']:.2%}), {t['qps']:.1f} req/s over "
        f"{t['window_s']:.0f} s; latencies of successful calls in ms to the microsecond (HDR, all workers)"
    )
    if phase == "preparing":  # the figures are still the last run's: none until the new one starts
        text = "preparing the collections of the picked classes; the test starts when they are ready"
    rows = [{"layer": "run", "operation": text}]
    if phase != "preparing" and (ran := drivers.line(doc.get("run", {}).get("drivers") or [])):
        rows.append({"layer": "run", "operation": ran})  # which driver made the figures below
    if phase != "preparing" and (left_out := resets.line(doc.get("run", {}))):
        rows.append({"layer": "run", "operation": left_out})  # a warm-up the figures below leave out
    under_way = preparation.current()
    if under_way is not None:  # a start from the form fills and indexes its collections: what the terminal shows
        rows.append({"layer": "run", "operation": f"preparing: {under_way['text']}"})
    if state.error:  # the test stopped before it began: say why here, not only on the terminal
        rows.append({"layer": "run", "operation": f"loadgen: error: {state.error}"})
    open_loop = (doc.get("open_loop") or {}) if phase != "preparing" else {}
    if open_loop.get("intended"):  # open model (--arrival-rate): what was asked for and what the users managed
        rows.append({"layer": "open loop", "operation": _open_loop_text(open_loop)})
    streams = {k: v for k, v in open_loop.get("by_type", {}).items() if k.endswith("[stream]")}
    for kind, counts in sorted(streams.items()):  # --stream-rates: fixed-rate writes next to either model
        rows.append({"layer": "stream", "operation": f"{kind}: " + _open_loop_text(counts, "sent_rate")})
    rows.append({"layer": "report", "operation": f".{REPORT_ROUTE} and .{RESULTS_ROUTE} (under Download Data)"})
    return rows


def _open_loop_text(a: dict[str, Any], achieved: str = "achieved_rate") -> str:
    return (
        f"target {a.get('target_rate', 0):.1f} req/s, achieved {a.get(achieved, 0):.1f} req/s; "
        f"sent {a.get('sent', 0)} of {a.get('intended', 0)}, late {a.get('late', 0)}, dropped {a.get('dropped', 0)}"
    )


def rows_of(environment: Any, state: Any, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The tab's rows from one results document (``state``: hooks' ``_State``: the error of a test that never
    began, the phase of a start from the form). While a start prepares, the status rows only."""
    if getattr(state, "phase", "") == "preparing":
        return _status_rows(environment, state, doc)
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for m in doc["requests"]:
        layer, op, side = operation_of(m["type"], m["name"])
        row = table.setdefault((layer, op), {"layer": layer, "operation": op})
        row[f"{side}_rps"] = round(m["rps"], 1)
        if m["successes"]:  # milliseconds to the microsecond (three decimals), from the merged HDR histograms
            row.update({f"{side}_{q}_ms": round(m[f"{q}_ms"], 3) for q in _PERCENTILES})
        if "qvps" in m:  # --nq: query vectors per second; the answers' mean size (loadgen.stats.shape)
            row[f"{side}_qvps"] = round(m["qvps"], 1)
        if "response_bytes_per_call" in m:
            row[f"{side}_bytes"] = round(m["response_bytes_per_call"])
    for key, entry in (doc.get("recall") or {}).items():
        request_type, _, name = key.partition(" ")
        layer, op, side = operation_of(request_type, name)
        table.setdefault((layer, op), {"layer": layer, "operation": op})[f"recall_{side}"] = f"{entry['mean']:.4f}"
    ordered = sorted(table.values(), key=lambda r: (_LAYER_ORDER.get(r["layer"], 9), r["layer"], r["operation"]))
    return _status_rows(environment, state, doc) + ordered
