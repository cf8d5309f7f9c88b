"""The web UI's start form: checked before anything starts, prepared with progress on the page, every run's results
kept in a folder of its own.

Locust's form posts to ``/swarm``, and Locust starts the test at once: preparing the collections then happened inside
``test_start`` (a minute of "SPAWNING" with no sign of life), and a mistake showed up as a traceback after it. Here a
``before_request`` handler takes the form first:

1. **Check** (``locust.starting.check``, the same checks as a headless start, for the classes picked in the form): the
   form's values are parsed by the same code as the command line's flags (``Settings.from_options``), the picked
   classes must have something to do, and the server is asked (read-only) what ``prepare`` would refuse. A problem is
   answered as Locust answers a bad form: ``success: false`` with the one-line error, which the form shows; the runner
   is not touched, so the next start can follow at once.
2. **Prepare** the layers of the picked classes in a greenlet, while the page polls: the run state is "preparing" and
   the steps (``milvus.preparation``: which collection, rows filled of how many, the index) show in the page. A failure
   there is shown in the page and the run's folder keeps its results (with the error).
3. **Start**: the form is handed to Locust's own ``/swarm`` (through the app's test client, marked so that step 1
   lets it through), which starts the test on the prepared collections (``test_start`` finds them ready).

Every run started from the form writes its results.json and report to ``<--results-dir>/ui-<start time>/`` when it
ends (the Stop button, its run time, Ctrl-C or SIGTERM, a start that failed); ``/stop`` while preparing stops the
preparation.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import gevent
from flask import Response, jsonify, request
from werkzeug.datastructures import MultiDict

from loadgen.config.settings import SECRET_FIELDS, Settings, option_names
from loadgen.errors import LoadgenError
from loadgen.locust import hooks, starting
from loadgen.locust.hooks import _State
from loadgen.milvus import preparation
from loadgen.stats.listeners import RunFolder

log = logging.getLogger("loadgen")
REPLAY_HEADER = "X-Loadgen-Prepared"  # marks the form handed to Locust once the collections are ready
_LOCUST_FIELDS = ("user_count", "spawn_rate", "host", "user_classes", "run_time", "profile", "shape_class")


class Starts:
    """The starts of one web UI process: the preparation under way, and whether the current run's results are
    still to be written."""

    def __init__(self, environment: Any, state: _State, base: str) -> None:
        self.environment, self.state, self.base = environment, state, base
        self.preparing: gevent.Greenlet | None = None
        self.open = False  # a run began and its results are not written yet
        self._token = secrets.token_hex(16)
        self._reported: dict[str, float] = {}  # master: each worker's last stats report (time.monotonic())

    # ---- what the page asks -------------------------------------------------------------------------------------
    def is_preparing(self) -> bool:
        return self.preparing is not None and not self.preparing.dead

    def status(self) -> dict[str, Any]:
        """What the page shows above everything: the preparation under way, or why the last start failed."""
        return {
            "phase": self.state.phase or ("preparing" if self.is_preparing() else ""),
            "preparing": preparation.current(),
            "error": f"loadgen: error: {self.state.error}" if self.state.error else "",
            "results": str(RunFolder.path) if RunFolder.path is not None else "",
        }

    # ---- the form -----------------------------------------------------------------------------------------------
    def on_swarm(self) -> Response | None:
        """``before_request`` for ``/swarm``: None lets Locust's own handler run."""
        if request.headers.get(REPLAY_HEADER) == self._token:
            return None  # the form handed on once the collections are ready
        runner = self.environment.runner
        if runner is None or str(runner.state) in ("spawning", "running"):
            return None  # no runner (Locust says so), or the running test's user count changed: nothing to prepare
        if self.is_preparing():
            return self._refused("a start is being prepared; wait for it, or press Stop")
        form = request.form
        names, classes = self._picked(form)
        try:
            settings = self._settings(form)
            _locust_values(form)
            starting.check(self.environment, classes, settings, server=True)
        except LoadgenError as exc:
            hooks.fail(self.environment, exc)  # the runner is not touched: the form can start again at once
            return self._refused(f"loadgen: error: {exc}")
        self._apply(form, settings)
        self.state.error, self.environment.process_exit_code = "", None
        self.state.classes = names
        self._begin_run()
        replay = [(k, v) for k, v in form.items(multi=True) if k not in SECRET_FIELDS]
        headers = {k: v for k, v in request.headers.items() if k in ("Cookie", "Authorization")}
        self.state.phase = "preparing"
        self.preparing = gevent.spawn(self._prepare_then_start, starting.layers_of(classes), replay, headers)
        return jsonify({"success": True, "message": "Preparing the collections", "host": self.environment.host})

    def on_stop(self) -> None:
        """``before_request`` for ``/stop``: a preparation under way stops (Locust's handler then stops the runner)."""
        if self.is_preparing():
            assert self.preparing is not None
            self.preparing.kill(block=True)
            self.state.phase = ""
            log.info("loadgen: the start was stopped while it prepared the collections")
            self.finish()

    def _refused(self, message: str) -> Response:
        return jsonify({"success": False, "message": message, "host": self.environment.host})

    def _picked(self, form: Any) -> tuple[list[str], list[type]]:
        available = dict(getattr(self.environment, "available_user_classes", None) or {})
        if getattr(self.environment.web_ui, "userclass_picker_is_active", False):
            names = [n for n in form.getlist("user_classes") if n in available]
            return sorted(names), [available[n] for n in names]
        classes = list(self.environment.user_classes or [])
        return sorted(c.__name__ for c in classes), classes

    def _settings(self, form: Any) -> Settings:
        """The settings the form asks for: the process's options with the form's values, parsed by the same code
        as the command line's flags."""
        options = argparse.Namespace(**vars(self.environment.parsed_options))
        for name in option_names():
            if name in form:
                setattr(options, name, form[name])
        host = form.get("host") or self.environment.host
        return Settings.from_options(options, host, form.get("milvus_token") or self.state.token)

    def _apply(self, form: Any, settings: Settings) -> None:
        """The form's values become the process's options now (Locust applies them again when it starts the test):
        the preparation reads them, and a token typed into the form stays out of them (see hooks' init)."""
        opts = self.environment.parsed_options
        for name in option_names():
            if name in form and name not in SECRET_FIELDS:
                setattr(opts, name, form[name])
        if form.get("milvus_token"):
            self.state.token = settings.milvus_token
        if form.get("host"):  # as Locust takes it (which guards against markup in it)
            self.environment.host = str(form["host"]).replace("<", "").replace(">", "")
        self.state.settings = None  # built again from the options just set

    # ---- preparing, then Locust's start -------------------------------------------------------------------------
    def _prepare_then_start(self, layers: list[str], form: list[tuple[str, str]], headers: dict[str, str]) -> None:
        try:
            hooks.prepare(self.environment, layers)
        except LoadgenError as exc:
            self._failed(exc)
            return
        except Exception as exc:  # a bug must not leave the page "preparing" for ever
            log.exception("loadgen: preparing the collections failed")
            self._failed(LoadgenError(f"preparing the collections failed: {exc}"))
            return
        finally:
            # the hub's cached clock may be stale after a long preparation (see hooks' init)
            gevent.get_hub().loop.update_now()
        self.state.phase = ""
        try:
            client = self.environment.web_ui.app.test_client()
            answer = client.post(
                f"{self.base}/swarm", data=MultiDict(form), headers={**headers, REPLAY_HEADER: self._token}
            )
            body = answer.get_json(silent=True) or {}
            message = "" if body.get("success") else str(body.get("message") or f"Locust said {answer.status}")
        except Exception as exc:  # as above: the page must learn that the start failed
            log.exception("loadgen: starting the test failed")
            message = str(exc)
        if message:
            self._failed(LoadgenError(f"Locust did not start the test: {message}"))

    def _failed(self, exc: LoadgenError) -> None:
        hooks.fail(self.environment, exc)
        self.state.phase = "failed"
        self.finish()

    # ---- each run's folder --------------------------------------------------------------------------------------
    def _begin_run(self) -> None:
        """The run's folder, ``<--results-dir>/ui-<start time>/`` (none without ``--results-dir``)."""
        base = getattr(self.environment.parsed_options, "results_dir", "") or ""
        if not base:
            RunFolder.path = None
            return
        stamp, n = time.strftime("ui-%Y%m%d-%H%M%S"), 1
        folder = Path(base) / stamp
        while folder.exists():
            n += 1
            folder = Path(base) / f"{stamp}-{n}"
        RunFolder.path = folder
        self.open = True

    def on_worker_report(self, client_id: str, **_: Any) -> None:
        self._reported[client_id] = time.monotonic()

    def on_test_start(self, **_: Any) -> None:
        self._reported.clear()  # the workers of this test

    def finish_after_workers(self) -> None:
        """On a master, a stopped test's last calls reach it with each worker's next stats report (every
        ``WORKER_REPORT_INTERVAL`` s), after Locust says the test stopped: the results wait for them (bounded), so
        they hold every call the tab shows once the test has stopped."""
        from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

        if self.open and isinstance(self.environment.runner, MasterRunner) and self._reported:
            stopped, deadline = time.monotonic(), time.monotonic() + WORKER_REPORT_INTERVAL + 3
            while time.monotonic() < deadline and any(t <= stopped for t in self._reported.values()):
                gevent.sleep(0.1)
        self.finish()

    def finish(self) -> None:
        """The run ended (stopped, its run time over, or it could not start): its results, once."""
        if not self.open:
            return
        self.open = False
        try:
            written = hooks.write_results(self.environment)
        except Exception as exc:  # the results must not break the UI: one line, as at quitting
            log.warning("loadgen: could not write the run's results: %s", " ".join(str(exc).split()))
            return
        if written is not None:
            log.info("loadgen: results of the run written to %s", written.parent)


def _locust_values(form: Any) -> None:
    """What Locust would refuse in the form, refused before anything is prepared (its own messages say the same)."""
    from locust.util.timespan import parse_timespan

    try:
        users = int(form.get("user_count", "0"))
        rate = float(form.get("spawn_rate", "1"))
    except ValueError:
        raise LoadgenError("the number of users must be an integer and the ramp up a number") from None
    if users < 0 or not rate > 0:
        raise LoadgenError("the number of users must be 0 or more and the ramp up above 0 users per second")
    if form.get("run_time"):
        try:
            parse_timespan(form["run_time"])
        except ValueError:
            raise LoadgenError(f"run time {form['run_time']!r}: expected e.g. 20s, 3m, 1h20m") from None


def install(environment: Any, state: _State, base: str) -> Starts:
    """Take the form's ``/swarm`` and ``/stop`` first; write each run's results when it stops, and at quit."""
    starts = Starts(environment, state, base)
    app = environment.web_ui.app

    @app.before_request
    def _gate() -> Response | None:
        if request.method == "POST" and request.path == f"{base}/swarm":
            return starts.on_swarm()
        if request.method == "POST" and request.path == f"{base}/stop":
            starts.on_stop()
        return None

    environment.events.worker_report.add_listener(starts.on_worker_report)
    environment.events.test_start.add_listener(starts.on_test_start)
    environment.events.test_stop.add_listener(lambda **_: gevent.spawn(starts.finish_after_workers))
    # quitting fires in reverse order: this runs after the users were stopped (shutdown.stop_users_first, which
    # fires test_stop) and before hooks' own quitting cleans up (dropping the collections)
    environment.events.quitting.add_listener(lambda **_: starts.finish_after_workers())
    return starts
