"""The shared shape of loadgen's own statistics in a distributed run (latency histograms, recall).

Each node records what its users did; a worker sends what it recorded since its last report along with Locust's
stats report (``report_to_master``) and forgets it; the master merges (``worker_report``); the master or local runner
writes the merged result to ``out_path`` when the test stops and again at quit (after the workers' last reports).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger("loadgen")

# where a statistic is written: a file, a file found when it is written (the current run's folder), or nowhere
OutPath = Path | Callable[[], Path | None] | None


class RunFolder:
    """The folder the current test's files go to instead of ``--results-dir`` itself: the web UI runs many tests in
    one process, and each writes into a folder of its own (set by ``loadgen.web.start``); None elsewhere."""

    path: Path | None = None


def out_path(opts: Any, option: str, name: str) -> OutPath:
    """Where a statistic is written: its own file option, else ``name`` in the current run's folder (``RunFolder``)
    or ``--results-dir``; None when neither is set."""
    given = getattr(opts, option, "") or ""
    folder = getattr(opts, "results_dir", "") or ""
    if given:
        return Path(given)
    return (lambda: (RunFolder.path or Path(folder)) / name) if folder else None


def resolve(path: OutPath) -> Path | None:
    return path() if callable(path) else path


def write_json(path: OutPath, doc: Any) -> Path | None:
    """Write ``doc`` to ``path`` atomically (readers never see half of it); the file written, or None."""
    target = resolve(path)
    if target is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(target)
    return target


class MergedListener:
    """Subclasses say what they record (``on_request``) and how it travels: ``has_data``, ``to_payload``,
    ``merge_payload``, ``reset``, ``results``. This class does the wiring, which is the same for all of them; one
    that must outlive a reset of the statistics (what ran, not what it measured) overrides ``on_stats_reset``."""

    report_key: ClassVar[str]
    what: ClassVar[str]  # for the warning about a bad worker payload

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.environment = environment
        self.out_path = out_path
        events = environment.events
        events.request.add_listener(self.on_request)
        events.report_to_master.add_listener(self.on_report_to_master)
        events.worker_report.add_listener(self.on_worker_report)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        events.reset_stats.add_listener(self.on_stats_reset)  # with Locust's own (loadgen.locust.warmup)

    # ---- what a subclass provides ----------------------------------------------------------------------------
    def on_request(self, request_type: str, name: str, **kwargs: Any) -> None:
        raise NotImplementedError

    def has_data(self) -> bool:
        raise NotImplementedError

    def to_payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def merge_payload(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def results(self) -> dict[str, Any]:
        raise NotImplementedError

    # ---- the wiring ------------------------------------------------------------------------------------------
    def _is_worker(self) -> bool:
        from locust.runners import WorkerRunner

        return isinstance(self.environment.runner, WorkerRunner)

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        """On a worker: what was recorded since the last report goes along with Locust's stats, then is forgotten."""
        if self.has_data():
            data[self.report_key] = self.to_payload()
        self.reset()

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get(self.report_key)
        if not payload:
            return
        try:
            self.merge_payload(payload)
        except Exception as exc:  # a bad report (another loadgen version) must not break the master's stats loop
            log.warning("ignored %s from worker %s: %s", self.what, client_id, exc)

    def on_test_start(self, **_: Any) -> None:
        self.reset()

    def on_stats_reset(self, **_: Any) -> None:
        """Locust reset its statistics (--reset-stats, the web UI's button, --warmup): this process forgets what it
        recorded, merged or not yet reported, so the figures count the calls Locust's count."""
        self.reset()

    def on_test_stop(self, **_: Any) -> None:
        self.write()

    def on_quitting(self, **_: Any) -> None:
        self.write()

    def write(self) -> None:
        """Write the merged results to ``out_path`` (master or local runner only); atomic, so readers never see half."""
        if self.out_path is None or self._is_worker():
            return
        write_json(self.out_path, self.results())
