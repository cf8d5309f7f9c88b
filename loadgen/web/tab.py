"""Locust's web UI for a vector database: a "Vector DB" tab, and the current run's results served by the UI.

``hooks`` attaches this at init when the process has a web UI (the master, or a local runner). Locust's React page
has one extension point, used here as Locust documents it (its examples/extend_web_ui.py): keys set in
``web_ui.template_args`` (an extra tab, the columns of its table, extra download links) persist across renders, and
an ``extended_stats`` entry added to each ``/stats/requests`` answer fills the table; the page polls that every 2 s
while a test runs. The figures are loadgen's own statistics as merged on the master: microsecond HDR latencies
(``state.histograms``), recall (``state.recall``) and, for the open load model and streams, the send counts
(``state.arrivals``).

Secrets: settings leave only through ``Settings.public()`` with the URI redacted, and the start form's secret fields
never carry a default (Locust re-parses the command line to fill the form, so a ``--milvus-token`` given there would
otherwise be written into the page).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from flask import Response, request

from loadgen.clients import task_names
from loadgen.milvus.collection import redact_uri
from loadgen.stats import results as summary
from loadgen.stats.histograms import LatencyHistograms
from loadgen.web.page import render_html

if TYPE_CHECKING:
    from loadgen.locust.hooks import _State

log = logging.getLogger("loadgen")

TAB_KEY = "vector-db"
RESULTS_ROUTE = "/loadgen/results.json"
REPORT_ROUTE = "/loadgen/report.html"
RESULTS_FORMAT = "milvus-loadgen/results/v1"  # the same document `loadgen run` writes as results.json
_PERCENTILES = ("p50", "p95", "p99")
_RECALL_KEYS = ("mean", "min", "p1", "p5", "p50")
_LAYER_ORDER = {
    "run": 0, "open loop": 1, "stream": 2, "report": 3, "pymilvus": 4, "langchain": 5, "llamaindex": 6, "embedding": 7,
}  # fmt: skip
# sync request names of every layer: async twins are these with "a" or "async_" in front (see _operation)
_SYNC_NAMES = task_names() | {"VectorStoreIndex.from_documents"}


def _columns() -> list[dict[str, str]]:
    cols = [("layer", "Layer"), ("operation", "Operation")]
    for side in ("sync", "async"):
        cols.append((f"{side}_rps", f"{side.capitalize()} req/s"))
        cols += [(f"{side}_{p}_ms", f"{side.capitalize()} {p} ms") for p in _PERCENTILES]
    cols += [("recall_sync", "Recall sync"), ("recall_async", "Recall async")]
    return [{"key": key, "title": title} for key, title in cols]


def attach(environment: Any, state: _State) -> None:
    """Add the tab, the routes and the secret masking to ``environment.web_ui`` (before it serves anything)."""
    web_ui = environment.web_ui
    base = (getattr(environment.parsed_options, "web_base_path", "") or "").rstrip("/")
    web_ui.template_args.update(
        extended_tabs=[{"title": "Vector DB", "key": TAB_KEY}],
        extended_tables=[{"key": TAB_KEY, "structure": _columns()}],
        extended_csv_files=[
            {"href": "." + RESULTS_ROUTE, "title": "loadgen results of the current run (JSON, microsecond latencies)"},
            {"href": "." + REPORT_ROUTE, "title": "loadgen report of the current run (HTML)"},
        ],
    )
    _mask_secret_defaults(web_ui)

    @web_ui.app.after_request
    def _extend_stats(response: Response) -> Response:
        if not request.path.endswith("/stats/requests") or not response.is_json or response.status_code != 200:
            return response
        try:
            rows = vector_db_rows(environment, state)
        except Exception:  # the page polls this for all of Locust's figures: our tab must never break them
            log.exception("Vector DB tab")
            return response
        data = response.get_json()
        data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        if environment.runner is not None:
            data["state"], data["user_count"] = _page_state(environment), environment.runner.user_count
        response.set_data(json.dumps(data))
        return response

    def results_json() -> Response:
        return Response(json.dumps(current_results(environment, state), indent=2), mimetype="application/json")

    def report_html() -> Response:
        return Response(render_html(current_results(environment, state)), mimetype="text/html")

    guard = web_ui.auth_required_if_enabled  # the same login as Locust's own pages, when --web-login is on
    web_ui.app.add_url_rule(base + RESULTS_ROUTE, "loadgen_results", guard(results_json))
    web_ui.app.add_url_rule(base + REPORT_ROUTE, "loadgen_report", guard(report_html))


def _page_state(environment: Any) -> str:
    """The runner's state as the page must hear it to keep polling. The page polls only while a test spawns or
    runs; on any other answer it stops, and then shows that state for good. Three answers strand it:
    - a stale "ready": Locust caches this answer, for ever longer once one took over 2 s (as while a collection
      fills), so the runner's own state is read here instead;
    - "ready" (or "stopped") while loadgen still fills the collection in ``test_start``: said to be spawning;
    - "stopping" or "cleanup" on the way to "stopped": said to be running until it is stopped."""
    state = str(environment.runner.state)
    if _preparing(environment, state):
        return "spawning"
    return "running" if state in ("stopping", "cleanup") else state


def _preparing(environment: Any, state: str | None) -> bool:
    """A swarm the form started is still in ``test_start``. Locust 2.47 runs that in the runner's spawning greenlet
    (local runner) or in the web UI's swarm greenlet (master)."""
    runner_greenlet = getattr(environment.runner, "spawning_greenlet", None)
    busy = (runner_greenlet, getattr(environment.web_ui, "_swarm_greenlet", None))
    return state in ("ready", "stopped") and any(g is not None and not g.dead for g in busy)


def _mask_secret_defaults(web_ui: Any) -> None:
    """Locust rebuilds the form's options (with their defaults, parsed again from argv) on every page render."""
    original = web_ui.update_template_args

    def update_template_args() -> None:
        original()
        for option in (web_ui.template_args.get("extra_options") or {}).values():
            if option.get("is_secret"):
                option["default_value"] = ""

    web_ui.update_template_args = update_template_args
    if web_ui.template_args.get("extra_options"):  # rendered once already, in WebUI.__init__
        update_template_args()


# ---- the Vector DB table -------------------------------------------------------------------------------------


def _operation(request_type: str, name: str) -> tuple[str, str, bool]:
    """(layer, operation, is_async) of one request series, so that sync and async twins share a row."""

    def sync_name(n: str) -> str:  # asimilarity_search, aquery[filtered], async_add -> their sync names
        for prefix in ("", "async_", "a"):
            base = n.removeprefix(prefix)
            if (not prefix or base != n) and base.split("[")[0] in _SYNC_NAMES:
                return base
        return n

    if request_type.endswith("-async-batch"):  # the fan-out batches exist only for async users
        return request_type.removesuffix("-async-batch"), name, True
    if request_type.endswith("-async"):
        return request_type.removesuffix("-async"), sync_name(name), True
    if request_type == "embedding":  # embedding time, reported under the store call's own name
        return "embedding", sync_name(name), sync_name(name) != name
    return request_type, name, False


def _status_rows(environment: Any, state: _State) -> list[dict[str, Any]]:
    runner = environment.runner
    text = (
        f"{runner.state if runner else 'no runner'}, {runner.user_count if runner else 0} users; "
        "latencies of successful calls in ms to the microsecond (HDR, all workers)"
    )
    rows = [{"layer": "run", "operation": text}]
    if state.error:  # the test stopped before it began: say why here, not only on the terminal
        rows.append({"layer": "run", "operation": f"loadgen: error: {state.error}"})
    open_loop = _open_loop(state)
    if open_loop.get("intended"):  # open model (--arrival-rate): what was asked for and what the users managed
        rows.append({"layer": "open loop", "operation": _open_loop_text(open_loop)})
    streams = {k: v for k, v in open_loop.get("by_type", {}).items() if k.endswith("[stream]")}
    for kind, counts in sorted(streams.items()):  # --stream-rates: fixed-rate writes next to either model
        rows.append({"layer": "stream", "operation": f"{kind}: " + _open_loop_text(counts, "sent_rate")})
    rows.append({"layer": "report", "operation": f".{REPORT_ROUTE} and .{RESULTS_ROUTE} (under Download Data)"})
    return rows


def _open_loop(state: _State) -> dict[str, Any]:
    """results.json's ``open_loop`` section, live: {} for a closed-loop test."""
    if state.arrivals is None:
        return {}
    settings = state.prepared_for or state.settings
    run = {"arrival_rate": settings.arrival_rate if settings is not None else 0.0}
    return summary.open_loop_section(state.arrivals.results(), run)


def _open_loop_text(a: dict[str, Any], achieved: str = "achieved_rate") -> str:
    return (
        f"target {a.get('target_rate', 0):.1f} req/s, achieved {a.get(achieved, 0):.1f} req/s; "
        f"sent {a.get('sent', 0)} of {a.get('intended', 0)}, late {a.get('late', 0)}, dropped {a.get('dropped', 0)}"
    )


def vector_db_rows(environment: Any, state: _State) -> list[dict[str, Any]]:
    """The tab's rows: run status first, then one row per (layer, operation) with sync and async side by side."""
    table: dict[tuple[str, str], dict[str, Any]] = {}

    def row(layer: str, op: str) -> dict[str, Any]:
        return table.setdefault((layer, op), {"layer": layer, "operation": op})

    runner = environment.runner
    for entry in runner.stats.entries.values() if runner is not None else []:  # Locust's current rate
        layer, op, is_async = _operation(entry.method, entry.name)
        row(layer, op)[f"{'async' if is_async else 'sync'}_rps"] = round(entry.current_rps, 1)
    hist = state.histograms.histograms if state.histograms is not None else LatencyHistograms()
    for request_type, name in hist.request_keys():
        p = hist.percentiles(request_type, name)
        if p["count"]:  # milliseconds to the microsecond (three decimals), from the merged HDR histograms
            layer, op, is_async = _operation(request_type, name)
            side = "async" if is_async else "sync"
            row(layer, op).update({f"{side}_{q}_ms": round(p[f"{q}_ms"], 3) for q in _PERCENTILES})
    for (request_type, name), stats in (state.recall.stats if state.recall is not None else {}).items():
        if stats.count:
            layer, op, is_async = _operation(request_type, name)
            row(layer, op)["recall_async" if is_async else "recall_sync"] = f"{stats.mean:.4f}"
    ordered = sorted(table.values(), key=lambda r: (_LAYER_ORDER.get(r["layer"], 9), r["layer"], r["operation"]))
    return _status_rows(environment, state) + ordered


# ---- the current run's results ---------------------------------------------------------------------------------


def current_results(environment: Any, state: _State) -> dict[str, Any]:
    """What the UI knows now, shaped like `loadgen run`'s results.json (percentiles from the HDR histograms)."""
    runner = environment.runner
    stats = runner.stats if runner is not None else None
    requests = [summary.entry_metrics(e.serialize()) for e in (stats.entries.values() if stats else [])]
    hist = state.histograms.histograms if state.histograms is not None else LatencyHistograms()
    for m in requests:
        h = hist.percentiles(m["type"], m["name"])
        if h["count"]:  # microsecond percentiles replace Locust's whole-millisecond ones
            m.update({k: h[k] for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "min_ms", "max_ms")})
            m["hdr_count"] = h["count"]
    requests.sort(key=lambda m: (m["name"], m["type"]))
    total_n = sum(m["requests"] for m in requests)
    total_f = sum(m["failures"] for m in requests)
    recall = {  # like results.json's: {"<type> <name>": {mean, min, p1, p5, p50, count}}
        f"{t} {n}": {**{k: v for k, v in s.summary().items() if k in _RECALL_KEYS}, "count": s.count}
        for (t, n), s in (state.recall.stats.items() if state.recall is not None else [])
        if s.count
    }
    settings = state.prepared_for or state.settings
    public = settings.public() if settings is not None else {}
    if "uri" in public:
        public["uri"] = redact_uri(public["uri"])
    run: dict[str, Any] = {
        "source": "web-ui",
        "state": runner.state if runner is not None else "missing",
        "users": runner.user_count if runner is not None else 0,
        "host": redact_uri(environment.host or ""),
        "classes": sorted(c.__name__ for c in environment.user_classes or []),
        "percentiles_from": "hdr" if hist else "locust",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"error": state.error} if state.error else {}),
    }
    failures = [
        {"type": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
        for e in (stats.errors.values() if stats else [])
    ]
    return {
        "format": RESULTS_FORMAT,
        "run": run,
        "settings": public,
        "requests": requests,
        "totals": {"requests": total_n, "failures": total_f, "fail_ratio": total_f / total_n if total_n else 0.0},
        "failures": failures,
        **({"recall": recall} if recall else {}),
        **({"open_loop": open_loop} if (open_loop := _open_loop(state)) else {}),
    }
