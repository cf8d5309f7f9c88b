"""Locust event listeners: options, the settings object, setup once per test run, cleanup, one-line errors.

Importing this module attaches the listeners (locust-plugins style). Setup runs on the master or local runner only:
at ``init`` for headless runs (so it does not eat into ``--run-time``) and again at ``test_start`` (a no-op when the
collection is already ready, which covers swarms started from the web UI). Workers only build their settings.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
from locust import events
from locust.runners import WorkerRunner

from loadgen import clients as adapters
from loadgen.config.settings import Settings, add_options
from loadgen.errors import LoadgenError
from loadgen.locust.workers import WorkerWatch, apply_master_timeout
from loadgen.milvus import collection
from loadgen.runtime import bridge
from loadgen.stats.arrivals import ArrivalStats
from loadgen.stats.histograms import HistogramListener
from loadgen.stats.recall import RecallListener

log = logging.getLogger("loadgen")


class _State:
    settings: Settings | None = None
    prepared: dict[str, collection.Prepared] = {}  # noqa: RUF012 - layer -> its collection, on the master
    prepared_for: Settings | None = None
    worker_requests: dict[str, int] = {}  # noqa: RUF012 - one process-wide tally, on the master
    histograms: HistogramListener | None = None  # microsecond latencies, merged on the master
    recall: RecallListener | None = None  # per-search recall against --dataset, merged on the master
    arrivals: ArrivalStats | None = None  # open-model and stream send counts, merged on the master
    workers: WorkerWatch | None = None  # workers seen and lost, on the master
    token = ""  # a --milvus-token given on the command line, kept out of parsed_options (web UI, spawn messages)
    error = ""  # why the last test could not start, for the web UI (where stderr is out of sight)


state = _State()


def settings_for(environment: Any) -> Settings:
    """The frozen settings of the current test (built from the options the master sent, on workers)."""
    if state.settings is None:
        settings = Settings.from_options(environment.parsed_options, environment.host, state.token)
        adapters.check_task_names(settings.weights, settings.stream_rates)
        state.settings = settings
    return state.settings


def _fail(environment: Any, exc: LoadgenError) -> None:
    state.error = str(exc)
    sys.stderr.write(f"loadgen: error: {exc}\n")
    sys.stderr.flush()
    environment.process_exit_code = exc.exit_code


def _layers(environment: Any) -> list[str]:
    return sorted({layer for cls in environment.user_classes or [] if (layer := getattr(cls, "layer", None))})


def _prepare(environment: Any) -> None:
    settings = settings_for(environment)
    if state.prepared and state.prepared_for == settings:
        return
    state.prepared, state.prepared_for = {}, settings
    for layer in _layers(environment):
        p = adapters.module(layer).prepare(settings, progress=True)
        state.prepared[layer] = p
        how = "created" if p.created else "reused"
        log.info("%s collection %s ready: %d rows, %s, Milvus %s", layer, p.name, p.rows, how, p.server_version)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    add_options(parser, locust=True)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    # pymilvus logs a full traceback for every failed call; under load that floods the terminal with what
    # Locust's failure table already counts (with the server's message)
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    opts: Any = environment.parsed_options
    cli_token: str = getattr(opts, "milvus_token", "") or ""
    if cli_token:
        state.token, opts.milvus_token = cli_token, ""  # never rendered in the UI or sent to workers
    latency_file = getattr(opts, "latency_file", "") or ""
    state.histograms = HistogramListener(environment, out_path=Path(latency_file) if latency_file else None)
    recall_file = getattr(opts, "recall_file", "") or ""
    state.recall = RecallListener(environment, out_path=Path(recall_file) if recall_file else None)
    open_loop_file = getattr(opts, "open_loop_file", "") or ""
    state.arrivals = ArrivalStats(environment, out_path=Path(open_loop_file) if open_loop_file else None)
    workers_file = getattr(opts, "workers_file", "") or ""
    state.workers = WorkerWatch(environment, out_path=Path(workers_file) if workers_file else None)
    apply_master_timeout(environment)
    if getattr(environment, "web_ui", None) is not None:  # the master's or local runner's web UI
        from loadgen.web import tab as webui

        webui.attach(environment, state)
    if isinstance(environment.runner, WorkerRunner):
        return
    if opts is None or not (opts.headless or opts.autostart):
        return  # web UI: the host and options may still change in the form; set up when the swarm starts
    try:
        _prepare(environment)
    except LoadgenError as exc:
        _fail(environment, exc)
        sys.exit(exc.exit_code)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    state.settings = None  # options may have changed (web UI form, or the master's parsed_options on a worker)
    if state.error:  # web UI: a new start supersedes one that failed (and its exit code)
        state.error, environment.process_exit_code = "", None
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner) and environment.parsed_options is not None:
        # the open model splits --arrival-rate over every user in the test; workers only see their own users, so
        # the master tells them the total (custom options travel in the spawn message, sent after test_start)
        environment.parsed_options.total_users = runner.target_user_count
    try:
        settings_for(environment)
        if not isinstance(environment.runner, WorkerRunner):
            _prepare(environment)
    except LoadgenError as exc:
        _fail(environment, exc)
        if environment.runner is not None:
            environment.runner.quit()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    done = sum(entry["num_requests"] for entry in data.get("stats", []))
    state.worker_requests[client_id] = state.worker_requests.get(client_id, 0) + done


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    bridge.stop()
    if state.worker_requests:
        log.info("requests per worker: %s", json.dumps(state.worker_requests, sort_keys=True))
    if isinstance(environment.runner, WorkerRunner) or not state.prepared:
        return
    settings = state.prepared_for
    if settings is None or settings.keep_data:
        return
    for layer, prepared in state.prepared.items():
        if not prepared.owned:
            continue
        try:
            if adapters.module(layer).drop(settings):
                log.info("dropped collection %s (created by loadgen; pass --keep-data to keep it)", prepared.name)
        except Exception as exc:  # the server may be gone (a fault test): one line, the run's results still count
            log.warning("could not drop collection %s: %s", prepared.name, " ".join(str(exc).split()))
