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
import time
from typing import Any

import gevent
from flask import Response, request

from loadgen.locust import hooks
from loadgen.locust.hooks import _State
from loadgen.web import charts, start
from loadgen.web.table import _PERCENTILES, REPORT_ROUTE, RESULTS_ROUTE, rows_of

log = logging.getLogger("loadgen")

TAB_KEY = "vector-db"
CHARTS_ROUTE = "/loadgen/charts.json"
CHARTS_SCRIPT_ROUTE = "/loadgen/charts.js"
STATUS_ROUTE = "/loadgen/status.json"
VENDOR_ROUTE = "/loadgen/vendor"  # uPlot, served by the UI itself (charts.VENDOR)
VENDORED = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}


def _columns() -> list[dict[str, str]]:
    cols = [("layer", "Layer"), ("operation", "Operation")]
    for side in ("sync", "async"):
        cols.append((f"{side}_rps", f"{side.capitalize()} req/s"))
        cols += [(f"{side}_{p}_ms", f"{side.capitalize()} {p} ms") for p in _PERCENTILES]
        # a search's shape beside its latency (loadgen.stats.shape): query vectors per second, answer bytes per call
        cols += [(f"{side}_qvps", f"{side.capitalize()} qv/s"), (f"{side}_bytes", f"{side.capitalize()} bytes/call")]
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
    starts = start.install(environment, state, base)  # the form checked, then prepared, before Locust starts
    history = charts.ChartHistory()  # the tab's live charts (loadgen.web.charts, charts.js)
    windows = charts.Windows()
    _chart_sampler(environment, state, history, windows)

    @web_ui.app.after_request
    def _extend_stats(response: Response) -> Response:
        if request.path in (base + "/", base + "/index.html") and response.mimetype == "text/html":
            return _with_chart_script(response)
        if not request.path.endswith("/stats/requests") or not response.is_json or response.status_code != 200:
            return response
        try:
            if starts.is_preparing():  # no point: the figures are the last run's until the new one starts
                rows = rows_of(environment, state, hooks.current_results(environment))
                history.clear()
            else:
                rows = _rows_and_point(environment, state, history, windows)
        except Exception:  # the page polls this for all of Locust's figures: our tab must never break them
            log.exception("Vector DB tab")
            return response
        data = response.get_json()
        data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        if environment.runner is not None:
            data["state"], data["user_count"] = _page_state(environment, starts), environment.runner.user_count
        response.set_data(json.dumps(data))
        return response

    def results_json() -> Response:
        return Response(json.dumps(hooks.current_results(environment), indent=2), mimetype="application/json")

    def report_html() -> Response:
        # the page each run writes beside its results.json (hooks.write_results), for the run as it stands
        return Response(hooks.report_page(environment, hooks.checked_results(environment)), mimetype="text/html")

    def charts_json() -> Response:
        links = {"report of the current run": "." + REPORT_ROUTE, "results.json": "." + RESULTS_ROUTE}
        return Response(json.dumps(history.document(links)), mimetype="application/json")

    def charts_js() -> Response:
        return Response(charts.SCRIPT.read_text(), mimetype="text/javascript")

    def status_json() -> Response:
        return Response(json.dumps(starts.status()), mimetype="application/json")

    def vendor(name: str) -> Response:
        path = charts.VENDOR / name
        if name not in VENDORED or not path.is_file():
            return Response("not found", status=404)
        return Response(path.read_bytes(), mimetype=VENDORED[name])

    guard = web_ui.auth_required_if_enabled  # the same login as Locust's own pages, when --web-login is on
    web_ui.app.add_url_rule(base + RESULTS_ROUTE, "loadgen_results", guard(results_json))
    web_ui.app.add_url_rule(base + REPORT_ROUTE, "loadgen_report", guard(report_html))
    web_ui.app.add_url_rule(base + CHARTS_ROUTE, "loadgen_charts", guard(charts_json))
    web_ui.app.add_url_rule(base + CHARTS_SCRIPT_ROUTE, "loadgen_charts_js", guard(charts_js))
    web_ui.app.add_url_rule(base + STATUS_ROUTE, "loadgen_status", guard(status_json))
    web_ui.app.add_url_rule(base + VENDOR_ROUTE + "/<name>", "loadgen_vendor", guard(vendor))


def _with_chart_script(response: Response) -> Response:
    """Locust's page has no extension point for a script: ours goes in before </body> (relative, like its assets)."""
    page = response.get_data(as_text=True)
    if "</body>" in page and CHARTS_SCRIPT_ROUTE not in page:
        response.set_data(page.replace("</body>", f'<script src=".{CHARTS_SCRIPT_ROUTE}"></script></body>', 1))
    return response


def _rows_and_point(
    environment: Any, state: _State, history: charts.ChartHistory, windows: charts.Windows
) -> list[dict[str, Any]]:
    """The table's rows and, from the same results document, the charts' next point."""
    doc = hooks.current_results(environment)
    rows = rows_of(environment, state, doc)
    recall = state.recall
    seconds = {key: recall.per_second(key) for key in recall.seconds} if recall is not None else None
    now = time.time()
    histograms = state.histograms.histograms if state.histograms is not None else None
    history.add(charts.point(doc, rows, now, seconds, windows.figures(histograms, doc, now)))
    return rows


def _chart_sampler(environment: Any, state: _State, history: charts.ChartHistory, windows: charts.Windows) -> None:
    """While a test runs and no page refreshes the table, a point every ``charts.IDLE_S`` seconds anyway; one more
    at test stop. Cleared at test start and when the statistics reset: the charts show what the figures count."""
    running: list[Any] = []

    def loop() -> None:
        while True:
            gevent.sleep(charts.IDLE_S / 2)
            if history.idle():
                _safe_point(environment, state, history, windows)

    def on_start(**_: Any) -> None:
        now = time.time()
        history.clear(now)
        windows.clear(now)
        if not running:
            running.append(gevent.spawn(loop))

    def on_stop(**_: Any) -> None:
        while running:
            running.pop().kill(block=False)
        _safe_point(environment, state, history, windows)

    def on_reset(**_: Any) -> None:  # the statistics start again (loadgen.locust.warmup): so do their charts
        now = time.time()
        history.clear(now)
        windows.clear(now)

    environment.events.test_start.add_listener(on_start)
    environment.events.test_stop.add_listener(on_stop)
    environment.events.reset_stats.add_listener(on_reset)


def _safe_point(environment: Any, state: _State, history: charts.ChartHistory, windows: charts.Windows) -> None:
    try:
        _rows_and_point(environment, state, history, windows)
    except Exception:  # a chart point must never break the run
        log.exception("Vector DB charts")


def _page_state(environment: Any, starts: start.Starts) -> str:
    """The runner's state as the page must hear it to keep polling. The page polls only while a test spawns or
    runs; on any other answer it stops, and then shows that state for good. Four answers strand it:
    - a stale "ready": Locust caches this answer, for ever longer once one took over 2 s (as while a collection
      fills), so the runner's own state is read here instead;
    - "ready" (or "stopped") while loadgen prepares the collections (``start``, or ``test_start``): said to be
      spawning, the only state of Locust's in which the page keeps polling before a test runs;
    - "ready" after a start that failed while it prepared: said to be stopped (the form can start again);
    - "stopping" or "cleanup" on the way to "stopped": said to be running until it is stopped."""
    state = str(environment.runner.state)
    if starts.is_preparing() or _preparing(environment, state):
        return "spawning"
    if starts.state.phase == "failed" and state == "ready":
        return "stopped"
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


# ---- the Vector DB table (rows built by loadgen.web.table) ---------------------------------------------------


def vector_db_rows(environment: Any, state: _State) -> list[dict[str, Any]]:
    """The tab's rows: run status first, then one row per (layer, operation) with sync and async side by side.
    Every figure is the one results.json holds (``hooks.current_results``)."""
    return rows_of(environment, state, hooks.current_results(environment))


hooks.web_ui_extensions.append(attach)
