"""Distributed runs under faults: the master notices and reports workers that went missing; workers give up on a
master that went silent.

Locust already marks a worker ``missing`` after three missed heartbeats (and its users are no longer counted), but
it only logs this at INFO level among everything else and forgets the worker a minute later. ``WorkerWatch`` keeps
the record for the results (``workers.json``) and says it in one line. A worker, on its side, waits 60 s for a
silent master before quitting (``locust.runners.MASTER_HEARTBEAT_TIMEOUT``); ``--master-timeout`` sets that.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import gevent
import locust.runners
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from loadgen.stats.listeners import OutPath, write_json

log = logging.getLogger("loadgen")


def apply_master_timeout(environment: Any) -> None:
    """On a worker: quit after ``--master-timeout`` seconds without a heartbeat from the master."""
    seconds = getattr(environment.parsed_options, "master_timeout", None)
    if isinstance(environment.runner, WorkerRunner) and seconds:
        # read by the worker's heartbeat_timeout_checker on every pass: a module constant is Locust's only knob
        locust.runners.MASTER_HEARTBEAT_TIMEOUT = max(1, math.ceil(float(seconds)))  # an int there


class WorkerWatch:
    """On the master: every worker seen, and every one that went missing (when, after how many reports)."""

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.environment = environment
        self.out_path = out_path
        self.seen: dict[str, float] = {}  # worker id -> first seen (unix time)
        self.missing: dict[str, float] = {}  # worker id -> when the master marked it missing
        self._greenlet: gevent.Greenlet | None = None
        environment.events.quitting.add_listener(self.on_quitting)
        if isinstance(environment.runner, MasterRunner):
            self._greenlet = gevent.spawn(self._watch)

    def _watch(self) -> None:
        while True:
            self.check()
            gevent.sleep(1.0)

    def check(self) -> None:
        runner = self.environment.runner
        now = time.time()
        for worker in list(runner.clients.values()):
            self.seen.setdefault(worker.id, now)
            if worker.state == STATE_MISSING and worker.id not in self.missing:
                self.missing[worker.id] = now
                left = runner.worker_count
                log.warning(
                    "loadgen: worker %s went missing (no heartbeat); going on with %d worker(s)", worker.id, left
                )

    def results(self) -> dict[str, Any]:
        return {
            "seen": sorted(self.seen),
            "missing": [{"id": w, "at": at} for w, at in sorted(self.missing.items(), key=lambda kv: kv[1])],
        }

    def on_quitting(self, environment: Any, **_: Any) -> None:
        if self._greenlet is None:
            return
        self._greenlet.kill(block=False)
        self.check()
        if self.missing:
            ids = ", ".join(self.missing)
            log.warning(
                "loadgen: %d of %d worker(s) went missing during the run: %s", len(self.missing), len(self.seen), ids
            )
        write_json(self.out_path, self.results())
