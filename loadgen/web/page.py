"""A small self-contained HTML page for a results document (``results.json`` shape): what the web UI links to as the
report of the current run. Every value is escaped: request names and failure texts come from the server."""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
    "td.l,th.l{text-align:left}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}"
)
_REQUEST_COLUMNS = (
    ("type", "type"), ("name", "name"), ("requests", "reqs"), ("failures", "fails"), ("rps", "req/s"),
    ("avg_ms", "avg ms"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"),
    ("p99_9_ms", "p99.9 ms"), ("max_ms", "max ms"),
)  # fmt: skip


def _cell(value: Any, left: bool = False) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"  # milliseconds to the microsecond
    elif isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True)
    else:
        text = "" if value is None else str(value)
    return f'<td class="l">{html.escape(text)}</td>' if left else f"<td>{html.escape(text)}</td>"


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(header))  # fmt: skip
    body = "".join("<tr>" + "".join(_cell(v, i < left) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(results: dict[str, Any]) -> str:
    run, totals = results.get("run", {}), results.get("totals", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>milvus-loadgen report</title>",
        f"<style>{_STYLE}</style></head><body><h1>milvus-loadgen: current run</h1>",
        f"<p>{html.escape(str(run.get('state', '')))}, {run.get('users', 0)} users, "
        f"{totals.get('requests', 0)} requests, {totals.get('failures', 0)} failures; percentiles from "
        f"{html.escape(str(run.get('percentiles_from', '')))} (microsecond HDR histograms when 'hdr'). "
        "<a href='results.json'>results.json</a></p>",
        "<h2>Requests</h2>",
        _table(
            [title for _, title in _REQUEST_COLUMNS],
            [[m.get(key) for key, _ in _REQUEST_COLUMNS] for m in results.get("requests", [])],
            left=2,
        ),
    ]
    recall = results.get("recall") or {}
    if recall:
        parts += [
            "<h2>Recall</h2>",
            _table(["request", "mean", "p5", "p10", "min", "count"],
                   [[k, *(v.get(x) for x in ("mean", "p5", "p10", "min", "count"))] for k, v in recall.items()]),
        ]  # fmt: skip
    ingest = results.get("ingest") or {}
    if ingest.get("writes"):  # the figures of loadgen.stats.ingest, as the summary and the report show them
        lag = ingest["index_lag"]
        parts += [
            "<h2>Ingest readiness</h2>",
            _table(["stage", "writes", "reached", "not reached", "p50 ms", "p99 ms", "max ms"],
                   [[st, ingest["writes"], ingest[st]["count"], ingest[f"not_{st}"], ingest[st]["p50_ms"],
                     ingest[st]["p99_ms"], ingest[st]["max_ms"]] for st in ("searchable", "indexed")]),
            f"<p>index lag: max {lag['max_s']:.2f} s, mean {lag['mean_s']:.2f} s, {lag['max_rows']} rows behind at most"
            "</p>",
        ]  # fmt: skip
    if results.get("failures"):
        rows = [[f["type"], f["name"], f["occurrences"], f["error"]] for f in results["failures"]]
        parts += ["<h2>Failures</h2>", _table(["type", "name", "count", "error"], rows, left=4)]
    parts += [
        "<h2>Run</h2>",
        _table(["key", "value"], [[k, v] for k, v in run.items()], left=2),
        "<h2>Settings</h2>",
        _table(["key", "value"], [[k, v] for k, v in results.get("settings", {}).items()], left=2),
        "</body></html>",
    ]
    return "".join(parts)
