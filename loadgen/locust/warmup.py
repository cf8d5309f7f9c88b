"""One reset for every figure: when Locust resets its statistics, all of loadgen's reset with them.

Locust resets its ``RequestStats`` (``stats.reset_all``) at the end of spawning under ``--reset-stats`` (on the
master, and on each worker when the master tells it spawning is complete) and from the web UI's Reset Stats button
(which first fires ``events.reset_stats``). Only the button fires the event; so ``reset_all`` is wrapped here, and
fires ``events.reset_stats`` when the button did not. Every statistic of loadgen listens to that event
(``MergedListener``, the server scraper, the web tab's charts) and resets in the same greenlet step as Locust's own,
so results.json, the summary, the tab and the report count the same calls as Locust. On workers the same holds per
process: what a worker reports after its reset left out the same calls from Locust's counts and from ours.

``--warmup`` uses the same reset: on the master (or local runner), ``warmup_s`` after the test started, the workers
are told to reset (a custom message) and the master resets its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner

from loadgen.errors import LoadgenError
from loadgen.stats.resets import ResetRecord

log = logging.getLogger("loadgen")
MESSAGE = "loadgen_reset_stats"  # master -> workers: the warm-up is over


class StatsResets:
    """Attached once per environment (``install``); ``record`` is the current test's (master or local runner)."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.record = ResetRecord()
        self._button = False  # events.reset_stats fired by someone else (the web UI): its reset_all comes next
        self._firing = False
        self._cause = ""
        self._timer: gevent.Greenlet | None = None
        environment.events.reset_stats.add_listener(self._on_event)
        environment.events.test_stop.add_listener(self.end)
        self._wrap(environment.stats)
        if isinstance(environment.runner, WorkerRunner):
            environment.runner.register_message(MESSAGE, self._on_message)

    def _wrap(self, stats: Any) -> None:
        original = stats.reset_all

        def reset_all() -> None:
            original()
            self._after_reset()

        stats.reset_all = reset_all

    def _on_event(self, **_: Any) -> None:
        if not self._firing:
            self._button = True

    def _after_reset(self) -> None:
        spawned = "reset-stats" if self.environment.reset_stats else "reset_all"
        by = self._cause or ("web-ui" if self._button else spawned)
        if not self._button:  # the button fired the event before its reset_all; anything else has not
            self._firing = True
            try:
                self.environment.events.reset_stats.fire()
            finally:
                self._firing = False
        self._button, self._cause = False, ""
        self.record.reset(by, time.time())

    def begin(self, warmup_s: float) -> None:
        """The test started (master or local runner, after its collections are ready): arm the warm-up's end."""
        self.end()
        self.record = ResetRecord(warmup_s=warmup_s, started_at=time.time())
        if warmup_s > 0:
            self._timer = gevent.spawn_later(warmup_s, self._warmup_over)

    def end(self, **_: Any) -> None:
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None

    def _warmup_over(self) -> None:
        self._timer = None
        runner = self.environment.runner
        if runner is None or runner.state in (STATE_STOPPING, STATE_STOPPED):
            return
        log.info("loadgen: warm-up over (%gs): every figure counts from now", self.record.warmup_s)
        if isinstance(runner, MasterRunner):
            runner.send_message(MESSAGE)  # each worker resets its own, unreported calls
        self._cause = "warmup"
        self.environment.stats.reset_all()

    def _on_message(self, *_: Any, **__: Any) -> None:
        self._cause = "warmup"
        self.environment.stats.reset_all()


def check(warmup_s: float, opts: Any) -> None:
    """A warm-up as long as the run would leave nothing to measure."""
    run_time = getattr(opts, "run_time", None)  # seconds, as Locust parsed it; None: no limit
    if warmup_s and isinstance(run_time, int | float) and run_time and warmup_s >= run_time:
        raise LoadgenError(
            f"--warmup {warmup_s:g}s is not shorter than --run-time {run_time:g}s: nothing would be measured"
        )


def install(environment: Any) -> StatsResets:
    """One per environment (the web UI runs many tests in one)."""
    found = getattr(environment, "_loadgen_resets", None)
    if found is None:
        found = StatsResets(environment)
        environment._loadgen_resets = found
    return found
