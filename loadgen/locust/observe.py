"""Issue 16's listeners, attached in one call from ``hooks._on_init``: Milvus's own metrics (master only), the
generator's own load (every node, merged on the master) and the Prometheus export of our figures (master only).

Kept apart from ``hooks.py`` so the integration there is one line; the objects live on ``observers`` for the web tab
and the exporter to read.
"""

from __future__ import annotations

import logging
from typing import Any

from locust.runners import WorkerRunner

from loadgen.stats.generator import GeneratorStats
from loadgen.stats.listeners import out_path
from loadgen.stats.server_metrics import ServerScraper

log = logging.getLogger("loadgen")


class _Observers:
    server: ServerScraper | None = None  # master / local runner, when a metrics URL is known
    generator: GeneratorStats | None = None  # every node; merged on the master
    exporter: Any = None  # loadgen.locust.exporter.Exporter on the master, with --prometheus-port


observers = _Observers()


def sections() -> dict[str, Any]:
    """results.json's ``server`` and ``generator`` sections as they stand (empty when not measured)."""
    gen = observers.generator.results() if observers.generator is not None else {}
    return {
        "server": observers.server.live() if observers.server is not None else {},
        "generator": gen if gen.get("nodes") else {},
    }


def attach(environment: Any, state: Any) -> None:
    """``state``: hooks' ``_State`` (histograms, recall, arrivals), read live by the exporter."""
    opts = environment.parsed_options
    observers.generator = GeneratorStats(environment, out_path=out_path(opts, "generator_file", "generator.json"))
    if isinstance(environment.runner, WorkerRunner):
        return
    url = getattr(opts, "milvus_metrics_url", "") or ""
    observers.server = (
        ServerScraper(environment, url, out_path=out_path(opts, "server_metrics_file", "server.json")) if url else None
    )
    port = int(getattr(opts, "prometheus_port", 0) or 0)
    if port and observers.exporter is None:
        from loadgen.locust.exporter import Exporter

        observers.exporter = Exporter(environment, state, observers)
        observers.exporter.serve(port)
        log.info("Prometheus metrics on :%d/metrics", port)
