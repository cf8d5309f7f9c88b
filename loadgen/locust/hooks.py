"""Locust event listeners: options, the settings object, setup once per test run, results and checks, cleanup,
one-line errors.

Importing this module attaches the listeners (locust-plugins style). Setup runs on the master or local runner only:
at ``init`` for headless runs (so it does not eat into ``--run-time``) and again at ``test_start`` (a no-op when the
collection is already ready, which covers swarms started from the web UI). Workers only build their settings. At
``quitting`` the master builds the run's results (``loadgen.stats.results``), writes them with ``--results-dir`` and
evaluates the checks, setting Locust's exit code: the same under ``loadgen run``, a plain ``locust`` command, the web
UI and a Kubernetes Job. Higher layers (the web UI's tab) register with ``web_ui_extensions`` instead of being
imported here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
from locust import events
from locust.exception import StopTest
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from loadgen import clients as adapters
from loadgen.config.settings import Settings, add_options
from loadgen.errors import LoadgenError
from loadgen.locust import observe, partial_report, shutdown, starting, warmup
from loadgen.locust.workers import WorkerWatch, apply_master_timeout
from loadgen.milvus import collection, preparation
from loadgen.runtime import bridge, thaw_heap
from loadgen.stats import checks, results, run_page, tracing
from loadgen.stats.arrivals import ArrivalStats
from loadgen.stats.drivers import DriverStats
from loadgen.stats.histograms import HistogramListener
from loadgen.stats.ingest import IngestListener
from loadgen.stats.listeners import RunFolder, out_path, write_json
from loadgen.stats.recall import RecallListener, recall_section
from loadgen.stats.retrieval import RetrievalListener

log = logging.getLogger("loadgen")


class _State:
    settings: Settings | None = None
    prepared: dict[str, collection.Prepared] = {}  # noqa: RUF012 - layer -> its collection, on the master
    prepared_for: Settings | None = None
    # collections prepared for earlier settings of this process (a web UI form that changed them): dropped at quit
    earlier: list[tuple[Settings, dict[str, collection.Prepared]]] = []  # noqa: RUF012
    worker_requests: dict[str, int] = {}  # noqa: RUF012 - one process-wide tally, on the master
    histograms: HistogramListener | None = None  # microsecond latencies, merged on the master
    recall: RecallListener | None = None  # per-search recall against --dataset, merged on the master
    retrieval: RetrievalListener | None = None  # relevance, first pages, tenants, freshness
    ingest: IngestListener | None = None  # inserts' ack -> searchable -> indexed, the index lag (--ingest-readiness)
    arrivals: ArrivalStats | None = None  # open-model and stream send counts, merged on the master
    drivers: DriverStats | None = None  # which driver ran each user class, in each process, merged on the master
    workers: WorkerWatch | None = None  # workers seen and lost, on the master
    resets: warmup.StatsResets | None = None  # every figure resets with Locust's statistics; --warmup
    token = ""  # a --milvus-token given on the command line, kept out of parsed_options (web UI, spawn messages)
    error = ""  # why the last test could not start, for the web UI (where stderr is out of sight)
    phase = ""  # web UI: "preparing" while a start from the form prepares, "failed" after it could not start
    classes: list[str] | None = None  # web UI: the classes picked for the current start (before Locust has them)
    peak_users = 0  # the most users the test ran at once (the runner has none left when results are built)


state = _State()
# (environment, state) -> None, called at init where the process has a web UI: how loadgen.web attaches its tab
web_ui_extensions: list[Callable[[Any, _State], None]] = []
# results.json sections of merged statistics kept by higher layers (users.custom's flow steps): name -> builder
result_sections: dict[str, Callable[[], dict[str, Any]]] = {}
REPORT_PAGE = "report.html"  # the run's report, beside its results.json (loadgen.stats.run_page)


def settings_for(environment: Any) -> Settings:
    """The frozen settings of the current test (built from the options the master sent, on workers)."""
    if state.settings is None:
        settings = Settings.from_options(environment.parsed_options, environment.host, state.token)
        adapters.check_task_names(settings.weights, settings.stream_rates)
        state.settings = settings
    return state.settings


def fail(environment: Any, exc: LoadgenError) -> None:
    """A test that could not start: one line on stderr, kept for the web UI, and the process's exit code."""
    state.error = str(exc)
    sys.stderr.write(f"loadgen: error: {exc}\n")
    sys.stderr.flush()
    environment.process_exit_code = exc.exit_code


def web_ui_runs(environment: Any) -> bool:
    """Tests start from the web UI's form (not headless, not --autostart): one process runs many of them."""
    opts = environment.parsed_options
    autostarts = opts is not None and bool(getattr(opts, "headless", False) or getattr(opts, "autostart", False))
    return getattr(environment, "web_ui", None) is not None and not autostarts


def refuse_start(environment: Any, exc: LoadgenError) -> None:
    """A test start refused once Locust began it (at ``test_start``): headless, Locust quits with the error's exit
    code; from the web UI, the test is stopped (Locust's ``StopTest``) and the UI stays up for the next start."""
    fail(environment, exc)
    if web_ui_runs(environment):
        raise StopTest(f"loadgen: error: {exc}")
    if environment.runner is not None:
        environment.runner.quit()


def _sets_up(environment: Any) -> bool:
    """Only the master (or a local runner) prepares collections. Not "anything but a worker": a worker that joins a
    running test gets its spawn message while Locust still constructs its runner, so its test_start fires with
    ``environment.runner`` still None; taken for a master, it prepared the collection again (and released and
    reloaded it under the other workers' searches: "channel not found" in a CI run)."""
    return isinstance(environment.runner, MasterRunner | LocalRunner)


def prepare(environment: Any, layers: list[str] | None = None) -> None:
    """Make the collections of ``layers`` (default: those of the test's user classes) ready, on the master or
    local runner; a layer ready for the same setup already is not prepared again."""
    settings = settings_for(environment)
    wanted = starting.layers_of(environment.user_classes or []) if layers is None else layers
    if state.prepared_for is not None and state.prepared_for.same_setup(settings):
        # headless: prepared at init, and test_start comes with the master's total_users set (the rates' split), a
        # setting no collection depends on. Preparing again cost a release and load check after the run time was
        # armed, and while it ran the prepared layers were unknown: a run time that ended meanwhile (a loaded CI
        # machine) cleaned up nothing and said nothing about the collection
        state.prepared_for = settings
        wanted = [layer for layer in wanted if layer not in state.prepared]
        if not wanted:
            return
    elif state.prepared_for is not None:  # other settings (the web UI's form): what they prepared is dropped at quit
        if state.prepared:
            state.earlier.append((state.prepared_for, state.prepared))
        state.prepared, state.prepared_for = {}, settings
    state.prepared_for = settings
    preparation.begin()
    try:
        for layer in wanted:  # what any layer would refuse, before the first one creates anything
            adapters.adapter(layer).check(settings)
        for layer in wanted:
            p = adapters.adapter(layer).prepare(settings, progress=True)
            state.prepared[layer] = p
            how = "created" if p.created else "reused"
            log.info("%s collection %s ready: %d rows, %s, Milvus %s", layer, p.name, p.rows, how, p.server_version)
        _share_truth_rows(environment, settings)
    finally:
        preparation.end()


def _share_truth_rows(environment: Any, settings: Settings) -> None:
    """--dataset and a reused collection holding another number of the dataset's rows than --rows selects: the
    ground truth is computed over the rows it holds (checked in ``held_rows``). Workers learn it from the spawn
    message (custom options travel in it), this process from its own settings."""
    held = {layer: p.truth_rows for layer, p in state.prepared.items()}
    truth_rows = max(held.values(), default=0)
    if settings.dataset and len(set(held.values())) > 1:  # 0: the --rows selection, which another layer's differs from
        said = ", ".join(f"{layer} {n or 'the --rows selection'}" for layer, n in sorted(held.items()))
        raise LoadgenError(
            f"--dataset: the layers' collections hold different numbers of its rows ({said}), so one ground truth "
            "cannot score them all; pass --recreate or --rows equal to the rows they hold"
        )
    if truth_rows == settings.truth_rows:
        return
    if truth_rows:
        log.info(
            "ground truth over the %d dataset rows collection %s holds (--rows selects %s)",
            truth_rows, settings.collection, settings.rows or "all",
        )  # fmt: skip
    if environment.parsed_options is not None:
        environment.parsed_options.truth_rows = truth_rows
    state.settings = state.prepared_for = dataclasses.replace(settings, truth_rows=truth_rows)


if tracing.requested():  # before Locust's own --otel setup, which runs after the locustfile's import
    tracing.detect_resources_in_line()


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
    if getattr(opts, "otel", False):  # Locust's flag: our store calls become spans (before any client connects)
        tracing.install_from(opts)
    state.histograms = HistogramListener(environment, out_path=out_path(opts, "latency_file", "latency.json"))
    state.recall = RecallListener(environment, out_path=out_path(opts, "recall_file", "recall.json"))
    state.retrieval = RetrievalListener(environment, out_path=out_path(opts, "retrieval_file", "retrieval.json"))
    state.ingest = IngestListener(
        environment, lambda: state.prepared_for or state.settings or settings_for(environment),
        out_path=out_path(opts, "ingest_file", "ingest.json"),
    )  # fmt: skip
    state.arrivals = ArrivalStats(environment, out_path=out_path(opts, "open_loop_file", "open_loop.json"))
    state.drivers = DriverStats(environment)
    state.workers = WorkerWatch(environment, out_path=out_path(opts, "workers_file", "workers.json"))
    state.resets = warmup.install(environment)
    apply_master_timeout(environment)
    for layer in starting.layers_of(environment.user_classes or []):  # every process, before any user needs them
        adapters.preload(layer)
    observe.attach(environment, state)  # Milvus's metrics, the generator's load, the Prometheus export
    if getattr(environment, "web_ui", None) is not None:  # the master's or local runner's web UI
        for extend in web_ui_extensions:
            extend(environment, state)
    shutdown.install(environment)  # Ctrl-C stops the users before the quitting cleanup; after the listeners
    if isinstance(environment.runner, WorkerRunner):
        return
    if opts is None or not (opts.headless or opts.autostart):
        return  # web UI: the host and options may still change in the form; set up when the swarm starts
    try:
        starting.check(environment, environment.user_classes or [], settings_for(environment), server=False)
        warmup.check(settings_for(environment).warmup, opts)
        prepare(environment)
    except LoadgenError as exc:
        fail(environment, exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C while the collection fills: a collection we made keeps its marker (reusable)
        sys.stderr.write("loadgen: interrupted while preparing the collection\n")
        sys.exit(130)
    finally:
        # setup may have held the hub for a while (numpy, imports): its loop's cached clock would then be stale, and
        # Locust's run-time timer, armed next, would fire that much early
        gevent.get_hub().loop.update_now()


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
    state.peak_users = 0
    try:
        settings = settings_for(environment)
        if _sets_up(environment):
            prepare(environment)
            warmup.check(settings.warmup, environment.parsed_options)
            if state.resets is not None:  # the warm-up starts once the collections are ready
                state.resets.begin(settings.warmup)
    except LoadgenError as exc:
        refuse_start(environment, exc)


@events.test_stop.add_listener
def _on_test_stop(**_: Any) -> None:
    thaw_heap()  # users froze what they hold once connected (runtime.freeze_heap); stopped, it is collectable again


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    done = sum(entry["num_requests"] for entry in data.get("stats", []))
    state.worker_requests[client_id] = state.worker_requests.get(client_id, 0) + done


@events.reset_stats.add_listener
def _on_reset_stats(**_: Any) -> None:
    state.worker_requests = {}


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    state.peak_users = max(state.peak_users, int(user_count))


def run_info(environment: Any) -> dict[str, Any]:
    """What the master knows about the run, with what ``loadgen run`` passed in ``--run-info``."""
    opts = environment.parsed_options
    runner = environment.runner
    info: dict[str, Any] = {
        "source": "web-ui" if getattr(environment, "web_ui", None) is not None else "headless",
        "users": max(state.peak_users, runner.user_count if runner is not None else 0),
        "spawn_rate": getattr(opts, "spawn_rate", None),
        "run_time": getattr(opts, "run_time", None),
        "classes": state.classes or sorted(c.__name__ for c in environment.user_classes or []),
        "host": collection.redact_uri(environment.host or ""),
        "state": state.phase or (str(runner.state) if runner is not None else "missing"),
        "workers": getattr(runner, "worker_count", 0) if runner is not None else 0,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    versions = {p.server_version for p in state.prepared.values()}
    if versions:
        info["server_version"] = sorted(versions)[0]
    settings = state.prepared_for or state.settings
    if settings is not None and settings.arrival_rate:
        info.update(model="open", arrival_rate=settings.arrival_rate)
    if settings is not None and settings.run_info:
        info.update(json.loads(settings.run_info))
    if state.resets is not None and (reset := state.resets.record.section()):
        info["warmup"] = reset  # what the figures leave out (loadgen.stats.resets)
    if state.drivers is not None and state.drivers.has_data():
        info["drivers"] = state.drivers.entries()
    if state.error:
        info["error"] = state.error
    if partial_report.stopped_early():  # Ctrl-C or SIGTERM cut the run short
        info["partial"] = partial_report.NOTE
    return info


def current_results(environment: Any) -> dict[str, Any]:
    """The run's results as they stand: what results.json holds at the end, and the web UI serves while it runs."""
    settings = state.prepared_for or state.settings
    public = settings.public() if settings is not None else {}
    if "uri" in public:
        public["uri"] = collection.redact_uri(public["uri"])
    arrival_rate = settings.arrival_rate if settings is not None else 0.0
    sections = {
        "recall": recall_section(state.recall) if state.recall is not None else {},
        # the retrieval layer's relevance, iterator first pages, tenant buckets and freshness
        "retrieval": state.retrieval.results() if state.retrieval is not None and state.retrieval.has_data() else {},
        "ingest": state.ingest.results() if state.ingest is not None and state.ingest.has_data() else {},
        "open_loop": results.open_loop_section(state.arrivals.results(), arrival_rate) if state.arrivals else {},
        "workers": state.workers.results() if state.workers is not None and state.workers.seen else {},
        **{name: section() for name, section in result_sections.items()},  # higher layers' sections (flows)
        **observe.sections(),  # Milvus's own figures ("server"), the generator's load
    }
    stats = environment.runner.stats if environment.runner is not None else environment.stats
    return results.build(stats, histograms=state.histograms, settings=public, run=run_info(environment),
                         sections=sections)  # fmt: skip


def checked_results(environment: Any) -> dict[str, Any]:
    """``current_results`` with the checks evaluated on them (``checks``: those set, those failed)."""
    settings = state.prepared_for or state.settings
    doc = current_results(environment)
    set_checks = checks.from_settings(settings) if settings is not None else checks.Checks()
    doc["checks"] = {"set": set_checks.__dict__, "failed": checks.evaluate(set_checks, doc)}
    return doc


def report_page(environment: Any, doc: dict[str, Any], folder: Path | None = None) -> str:
    """The run's report.html from its results document (``loadgen.stats.run_page``), linking Locust's own report
    when this process writes one (``--html``) beside it in ``folder``."""
    locust_report = _locust_report(environment, folder)
    return run_page.render(doc, server_function=adapters.server_function, locust_report=locust_report)


def _locust_report(environment: Any, folder: Path | None) -> str:
    """Locust's ``--html`` file as a link from ``folder``; "" without one, or when it is report.html itself (then
    ours takes its place: it is written after Locust's)."""
    html_file = getattr(environment.parsed_options, "html_file", None)
    if not html_file or folder is None or "{" in str(html_file):  # {u}, {r}, {t}: Locust names it as it saves it
        return ""
    path = Path(html_file).resolve()
    if path == (folder / REPORT_PAGE).resolve():
        return ""
    return os.path.relpath(path, folder.resolve())


def write_results(environment: Any) -> Path | None:
    """Build the run's results, evaluate its checks (setting Locust's exit code) and write results.json, with the
    run's report.html beside it (``report_page``, from the same document). Returns the file written, if any."""
    settings = state.prepared_for or state.settings
    doc = checked_results(environment)
    failed = doc["checks"]["failed"]
    for line in failed:
        sys.stderr.write(line + "\n")
    if failed:
        environment.process_exit_code = checks.CHECK_FAILED_EXIT_CODE
    folder = RunFolder.path or (Path(settings.results_dir) if settings is not None and settings.results_dir else None)
    if folder is None:
        return None
    written = write_json(folder / "results.json", doc)
    tmp = folder / f".{REPORT_PAGE}.{os.getpid()}.tmp"
    tmp.write_text(report_page(environment, doc, folder), encoding="utf-8")
    tmp.replace(folder / REPORT_PAGE)
    return written


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if tracing.enabled():
        tracing.shutdown()  # what is kept goes out before the process ends
        log.info("OpenTelemetry: store-call traces %s", json.dumps(tracing.counts(), sort_keys=True))
    if state.worker_requests:
        log.info("requests per worker: %s", json.dumps(state.worker_requests, sort_keys=True))
    if isinstance(environment.runner, WorkerRunner):
        return
    settings = state.prepared_for or state.settings
    # a run that never began writes nothing (bad input leaves no results); the web UI's runs are written as each
    # one ends (loadgen.web.start)
    written = None
    if settings is not None and not state.error and not web_ui_runs(environment):
        try:
            written = write_results(environment)
        except Exception as exc:  # the results must not hide the collection cleanup below
            log.warning("loadgen: could not write the run's results: %s", " ".join(str(exc).split()))
    try:  # right after the results, from the same statistics (nothing yields in between)
        partial_report.write(environment, ours=written.with_name(REPORT_PAGE) if written is not None else None)
    except Exception as exc:  # the report must not hide the collection cleanup below either
        log.warning("loadgen: could not write the partial report: %s", " ".join(str(exc).split()))
    if state.prepared or state.earlier:
        _cleanup()


def _cleanup() -> None:
    every = [*state.earlier, *([(state.prepared_for, state.prepared)] if state.prepared_for is not None else [])]
    for settings, prepared_layers in every:
        for layer, prepared in prepared_layers.items():
            # one rule for every layer (ownership.decide_release): only what this run created is dropped; logged
            try:
                adapters.adapter(layer).drop(settings)
            except Exception as exc:  # the server may be gone (a fault test): one line, the results still count
                log.warning("could not drop collection %s: %s", prepared.name, " ".join(str(exc).split()))


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    # only now: at ``quitting`` the users may still be running (a web UI or Ctrl-C shutdown stops them after it),
    # and an async user's on_stop still needs the loop to close its client
    bridge.stop()
