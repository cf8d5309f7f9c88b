"""``--prometheus-port``: the master's live figures for Prometheus, through ``prometheus-client``.

A custom collector reads the same objects the results files are written from (the merged HDR histograms, recall,
open-model counts, generator load) at scrape time, so the endpoint and the files tell one set of numbers. The HTTP
server is gevent's WSGI server in the master's hub, not prometheus-client's thread: the collector then runs between
greenlets and never sees a statistic half-merged.

The metric names are ``METRICS`` below; the Grafana dashboard under k8s/ queries them (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from loadgen.stats.arrivals import summarize as summarize_arrivals
from loadgen.stats.histograms import PERCENTILES

# exposed metric families: name -> help. Counters get ``_total`` on the wire (prometheus-client adds it).
METRICS: dict[str, str] = {
    "loadgen_request_latency_microseconds": "client latency percentile of successful requests (HDR, merged)",
    "loadgen_request_latency_mean_microseconds": "mean client latency of successful requests",
    "loadgen_requests": "store calls, successes and failures (results.json: requests)",
    "loadgen_request_successes": "successful store calls, the latency figures' population (results.json: successes)",
    "loadgen_request_failures": "failed store calls (results.json: failures)",
    "loadgen_recall": "recall@k of searches measured against ground truth",
    "loadgen_recall_samples": "query vectors whose recall was measured (one per search; --nq per search)",
    "loadgen_query_vectors": "query vectors the searches sent (--nq per call; results.json: query_vectors)",
    "loadgen_response_bytes": "bytes of the search answers measured (results.json: response_bytes_total)",
    "loadgen_response_bytes_calls": "search answers whose bytes were measured (results.json: response_bytes_calls)",
    "loadgen_open_target_rate": "open model: requests per second asked for",
    "loadgen_open_sent_rate": "open model: requests per second sent over the schedule's window",
    "loadgen_open_sends": "open model: sends by outcome (intended, sent, late, dropped)",
    "loadgen_generator_cpu_share": "share of one core a load-generating process used over the run",
    "loadgen_generator_cpu_share_last": "share of one core a load-generating process used in its last sample",
    "loadgen_generator_lag_milliseconds": "mean wake-up lag of a generator's event loop (gevent hub, asyncio)",
    "loadgen_generator_saturated": "1 when the generator, not Milvus, is the bottleneck",
}
_QUANTILES = {key: f"{q / 100:g}" for key, q in PERCENTILES.items()}  # p99_9_ms -> "0.999"


def wire_names() -> set[str]:
    """Every metric name a scrape can show (what dashboards may query)."""
    counters = {"loadgen_requests", "loadgen_request_successes", "loadgen_request_failures", "loadgen_recall_samples",
                "loadgen_open_sends", "loadgen_query_vectors", "loadgen_response_bytes",
                "loadgen_response_bytes_calls"}  # fmt: skip
    return {f"{n}_total" if n in counters else n for n in METRICS}


class LoadgenCollector(Collector):
    def __init__(self, environment: Any, state: Any, observers: Any) -> None:
        self.environment, self.state, self.observers = environment, state, observers

    def collect(self) -> Iterator[Any]:
        yield from self._requests()
        yield from self._recall()
        yield from self._open_model()
        yield from self._generator()

    def _requests(self) -> Iterator[Any]:
        labels = ["type", "name"]
        name = "loadgen_request_latency_microseconds"
        pct = GaugeMetricFamily(name, METRICS[name], labels=[*labels, "quantile"])
        name = "loadgen_request_latency_mean_microseconds"
        mean = GaugeMetricFamily(name, METRICS[name], labels=labels)
        calls = CounterMetricFamily("loadgen_requests", METRICS["loadgen_requests"], labels=labels)
        ok = CounterMetricFamily("loadgen_request_successes", METRICS["loadgen_request_successes"], labels=labels)
        failed = CounterMetricFamily("loadgen_request_failures", METRICS["loadgen_request_failures"], labels=labels)
        hist = self.state.histograms.histograms if self.state.histograms is not None else None
        for row in hist.summary() if hist is not None else []:
            key = [row["type"], row["name"]]
            for field, q in _QUANTILES.items():
                pct.add_metric([*key, q], round(row[field] * 1000))
            mean.add_metric(key, row["mean_ms"] * 1000)
            ok.add_metric(key, row["count"])
        stats = getattr(self.environment.runner, "stats", None)
        for entry in stats.entries.values() if stats is not None else []:
            if entry.num_requests:  # the rows results.json lists
                calls.add_metric([entry.method, entry.name], entry.num_requests)
                failed.add_metric([entry.method, entry.name], entry.num_failures)
        yield from (pct, mean, calls, ok, failed)
        yield from self._shape(labels)

    def _shape(self, labels: list[str]) -> Iterator[Any]:
        """A search's shape (loadgen.stats.shape) as counters: rate() of them is query vectors/s, bytes per call."""
        families = [CounterMetricFamily(name, METRICS[name], labels=labels) for name in
                    ("loadgen_query_vectors", "loadgen_response_bytes_calls", "loadgen_response_bytes")]  # fmt: skip
        tally = self.state.histograms.shape if self.state.histograms is not None else None
        for key, values in tally.counts().items() if tally is not None else []:
            vectors, measured, size = values
            for family, value, counted in zip(families, (vectors, measured, size), (vectors, measured, measured),
                                              strict=True):  # fmt: skip
                if counted:
                    family.add_metric(list(key), value)
        yield from families

    def _recall(self) -> Iterator[Any]:
        labels = ["type", "name"]
        recall = GaugeMetricFamily("loadgen_recall", METRICS["loadgen_recall"], labels=[*labels, "stat"])
        samples = CounterMetricFamily("loadgen_recall_samples", METRICS["loadgen_recall_samples"], labels=labels)
        listener = self.state.recall
        for (t, n), s in sorted(listener.stats.items()) if listener is not None else []:
            if not s.count:
                continue
            for stat, value in s.summary().items():
                if stat != "count":
                    recall.add_metric([t, n, stat], value)
            samples.add_metric([t, n], s.count)
        yield from (recall, samples)

    def _open_model(self) -> Iterator[Any]:
        target = GaugeMetricFamily("loadgen_open_target_rate", METRICS["loadgen_open_target_rate"], labels=["type"])
        rate = GaugeMetricFamily("loadgen_open_sent_rate", METRICS["loadgen_open_sent_rate"], labels=["type"])
        sends = CounterMetricFamily("loadgen_open_sends", METRICS["loadgen_open_sends"], labels=["type", "outcome"])
        arrivals = self.state.arrivals
        for kind, c in summarize_arrivals(arrivals.counts).items() if arrivals is not None else []:
            target.add_metric([kind], c["target_rate"])
            rate.add_metric([kind], c["sent_rate"])
            for outcome in ("intended", "sent", "late", "dropped"):
                sends.add_metric([kind, outcome], c[outcome])
        yield from (target, rate, sends)

    def _generator(self) -> Iterator[Any]:
        share = GaugeMetricFamily(
            "loadgen_generator_cpu_share", METRICS["loadgen_generator_cpu_share"], labels=["node"]
        )
        last = GaugeMetricFamily(
            "loadgen_generator_cpu_share_last", METRICS["loadgen_generator_cpu_share_last"], labels=["node"]
        )
        lag = GaugeMetricFamily(
            "loadgen_generator_lag_milliseconds", METRICS["loadgen_generator_lag_milliseconds"], labels=["node", "loop"]
        )
        saturated = GaugeMetricFamily("loadgen_generator_saturated", METRICS["loadgen_generator_saturated"])
        gen = self.observers.generator
        nodes = gen.live() if gen is not None else {}
        for node, figures in nodes.items():
            share.add_metric([node], figures["cpu_share"])
            last.add_metric([node], figures["cpu_share_last"])
            lag.add_metric([node, "gevent"], figures["hub_lag_ms"]["mean"])
            lag.add_metric([node, "asyncio"], figures["loop_lag_ms"]["mean"])
        saturated.add_metric([], float(any(f["saturated"] for f in nodes.values())))
        yield from (share, last, lag, saturated)


class Exporter:
    """One registry with our collector, served from the master's gevent hub."""

    def __init__(self, environment: Any, state: Any, observers: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = LoadgenCollector(environment, state, observers)
        self.registry.register(self.collector)
        self.server: Any = None

    def serve(self, port: int, host: str = "") -> None:
        from gevent import pywsgi

        self.server = pywsgi.WSGIServer((host, port), make_wsgi_app(self.registry), log=None)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None
