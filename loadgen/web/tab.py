"""Locust's web UI for a vector database: a "Vector DB" tab, and the current run's results served by the UI.

Importing this module registers ``attach`` with ``hooks.web_ui_extensions`` (``loadgen.users`` imports it), and
hooks call it at init when the process has a web UI (the master, or a local runner). Locust's React page
has one extension point, used here as Locust documents it (its examples/extend_web_ui.py): keys set in
``web_ui.template_args`` (an extra tab, the columns of its table, extra download links) persist across renders, and
an ``extended_stats`` entry added to each ``/stats/requests`` answer fills the table; the page polls that every 2 s
while a test runs. The figures are the run's results as ``hooks.current_results`` builds them (the
same document results.json holds at the end): microsecond HDR latencies, recall and the open model's send counts,
merged on the master.

Secrets: settings leave only through ``Settings.public()`` with the URI redacted, and the start form's secret fields
never carry a default (Locust re-parses the command line to fill the form, so a ``--milvus-token`` given there would
otherwise be written into the page).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, request

from loadgen.clients import row_operation
from loadgen.locust import hooks
from loadgen.locust.hooks import _State
from loadgen.web.page import render_html

log = logging.getLogger("loadgen")

TAB_KEY = "vector-db"
RESULTS_ROUTE = "/loadgen/results.json"
REPORT_ROUTE = "/loadgen/report.html"
_PERCENTILES = ("p50", "p95", "p99")
_RECALL_KEYS = ("mean", "min", "p1", "p5", "p50")
_LAYER_ORDER = {
    "run": 0, "open loop": 1, "stream": 2, "report": 3, "pymilvus": 4, "langchain": 5, "llamaindex": 6, "embedding": 7,
}  # fmt: skip


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
        return Response(json.dumps(hooks.current_results(environment), indent=2), mimetype="application/json")

    def report_html() -> Response:
        return Response(render_html(hooks.current_results(environment)), mimetype="text/html")

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


def _operation(request_type: str, name: str) -> tuple[str, str, str]:
    """(layer, operation, side) of one request row, from the operation tables, so that sync and async twins share
    a table row; fan-out calls (``<layer>-async-fanout``) have a row of their own: they are another concurrency."""
    found = row_operation(request_type, name)
    if found is None:  # a row of a user's own locustfile
        return request_type, name, "sync"
    layer, op, flavour = found
    return (layer + " fan-out", op, "async") if flavour == "fanout" else (layer, op, flavour)


def _status_rows(environment: Any, state: _State, doc: dict[str, Any]) -> list[dict[str, Any]]:
    runner = environment.runner
    t = doc["totals"]
    text = (
        f"{runner.state if runner else 'no runner'}, {runner.user_count if runner else 0} users; "
        f"{t['requests']} calls, {t['failures']} failed ({t['fail_ratio']:.2%}), {t['qps']:.1f} req/s over "
        f"{t['window_s']:.0f} s; latencies of successful calls in ms to the microsecond (HDR, all workers)"
    )
    rows = [{"layer": "run", "operation": text}]
    if state.error:  # the test stopped before it began: say why here, not only on the terminal
        rows.append({"layer": "run", "operation": f"loadgen: error: {state.error}"})
    open_loop = doc.get("open_loop") or {}
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


def vector_db_rows(environment: Any, state: _State) -> list[dict[str, Any]]:
    """The tab's rows: run status first, then one row per (layer, operation) with sync and async side by side.
    Every figure is the one results.json holds (``hooks.current_results``)."""
    doc = hooks.current_results(environment)
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for m in doc["requests"]:
        layer, op, side = _operation(m["type"], m["name"])
        row = table.setdefault((layer, op), {"layer": layer, "operation": op})
        row[f"{side}_rps"] = round(m["rps"], 1)
        if m["successes"]:  # milliseconds to the microsecond (three decimals), from the merged HDR histograms
            row.update({f"{side}_{q}_ms": round(m[f"{q}_ms"], 3) for q in _PERCENTILES})
    for key, entry in (doc.get("recall") or {}).items():
        request_type, _, name = key.partition(" ")
        layer, op, side = _operation(request_type, name)
        table.setdefault((layer, op), {"layer": layer, "operation": op})[f"recall_{side}"] = f"{entry['mean']:.4f}"
    ordered = sorted(table.values(), key=lambda r: (_LAYER_ORDER.get(r["layer"], 9), r["layer"], r["operation"]))
    return _status_rows(environment, state, doc) + ordered


hooks.web_ui_extensions.append(attach)
