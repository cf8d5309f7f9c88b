"""Milvus's own view of a run: its Prometheus endpoint, scraped by the master (or local runner) at a fixed interval.

What Milvus 2.3.5 exposes on ``:9091/metrics`` (read off the real endpoint, see tests/test_server_metrics.py):
- ``milvus_proxy_req_count{function_name, status}``: a counter per gRPC function (Search, Query, Insert, ...) and
  status (``total``, ``success``, ``fail``...), one series per proxy (``node_id``);
- latency histograms in milliseconds, buckets 1, 2, 4 ... 131072: ``milvus_proxy_sq_latency{query_type}`` for
  successful searches and queries, ``milvus_proxy_mutation_latency{msg_type}`` for inserts, upserts and deletes,
  ``milvus_proxy_req_latency{function_name}`` for every other function. 2.3.5 observes whole milliseconds (Go's
  ``Milliseconds()`` truncates), so a 0.8 ms search lands in the ``le="1"`` bucket as 0;
- ``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` of the scraped process (the whole standalone
  server when embedded; one proxy pod on a cluster).

Every figure here is a difference between scrapes taken during the run, summed pair by pair so that a counter reset
(a restarted server) loses only the interval it happened in, as Prometheus's ``increase()`` does. Percentiles are
interpolated inside a bucket as PromQL's ``histogram_quantile`` does, so they read like a Grafana panel; the bucket's
upper bound (``p99_le_ms``) is what the histogram proves.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loadgen.stats.listeners import OutPath, write_json

log = logging.getLogger("loadgen")

FORMAT = "milvus-loadgen/server/v1"
SCRAPE_INTERVAL_S = 2.0  # fixed: each timeline point costs the master a parse of the page
SCRAPE_TIMEOUT_S = 5.0
QUANTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99}

# (histogram, label naming the operation, label value -> server function; None: the value is the function's name)
LATENCY_SOURCES: tuple[tuple[str, str, dict[str, str] | None], ...] = (
    ("milvus_proxy_sq_latency", "query_type", {"search": "Search", "query": "Query"}),
    ("milvus_proxy_mutation_latency", "msg_type", {"insert": "Insert", "upsert": "Upsert", "delete": "Delete"}),
    ("milvus_proxy_req_latency", "function_name", None),
)


@dataclass
class Histogram:
    """A cumulative Prometheus histogram: finite upper bounds (ms) with their cumulative counts, plus +Inf."""

    bounds: list[float] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)
    count: float = 0.0
    sum: float = 0.0

    def add_bucket(self, le: float, value: float) -> None:
        if math.isinf(le):
            return  # the +Inf bucket is _count
        if le in self.bounds:
            self.cumulative[self.bounds.index(le)] += value
        else:
            self.bounds.append(le)
            self.cumulative.append(value)

    def sorted(self) -> Histogram:
        order = sorted(range(len(self.bounds)), key=self.bounds.__getitem__)
        return Histogram([self.bounds[i] for i in order], [self.cumulative[i] for i in order], self.count, self.sum)

    def minus(self, before: Histogram) -> Histogram:
        """What was observed between ``before`` and this one; everything of this one when the series was reset."""
        if self.count < before.count or self.bounds != before.bounds:
            return Histogram(list(self.bounds), list(self.cumulative), self.count, self.sum)
        cum = [a - b for a, b in zip(self.cumulative, before.cumulative, strict=True)]
        return Histogram(list(self.bounds), cum, self.count - before.count, self.sum - before.sum)

    def plus(self, other: Histogram) -> Histogram:
        if not self.bounds and not self.count:
            return other
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets")
        cum = [a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)]
        return Histogram(list(self.bounds), cum, self.count + other.count, self.sum + other.sum)

    def quantile(self, q: float) -> tuple[float, float]:
        """(interpolated value, upper bound of its bucket), as PromQL's ``histogram_quantile``; (0, 0) when empty.
        A rank past the last finite bucket answers that bucket's bound (the histogram knows no more)."""
        if self.count <= 0 or not self.bounds:
            return 0.0, 0.0
        rank, prev_bound, prev_cum = q * self.count, 0.0, 0.0
        for bound, cum in zip(self.bounds, self.cumulative, strict=True):
            if cum >= rank and cum > prev_cum:
                return prev_bound + (bound - prev_bound) * (rank - prev_cum) / (cum - prev_cum), bound
            prev_bound, prev_cum = bound, cum
        return self.bounds[-1], math.inf


@dataclass
class Snapshot:
    """One scrape: what the counters said at ``at`` (wall-clock seconds)."""

    at: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)  # (function, status) -> count
    latency: dict[str, Histogram] = field(default_factory=dict)  # function -> ms histogram
    sources: dict[str, str] = field(default_factory=dict)  # function -> the histogram its latency came from
    cpu_seconds: float | None = None
    rss_bytes: float | None = None


def _add_latency(latency: dict[tuple[str, str], Histogram], family: Any, names: dict[str, str] | None) -> None:
    label = next(lbl for name, lbl, _ in LATENCY_SOURCES if name == family.name)
    for s in family.samples:
        raw = s.labels.get(label, "")
        function = raw if names is None else names.get(raw)
        if not function:
            continue
        h = latency.setdefault((family.name, function), Histogram())
        if s.name.endswith("_bucket"):
            h.add_bucket(float(s.labels["le"]), s.value)
        elif s.name.endswith("_count"):
            h.count += s.value
        elif s.name.endswith("_sum"):
            h.sum += s.value


_WANTED = (
    "milvus_proxy_req_count", *(name for name, _, _ in LATENCY_SOURCES), "process_cpu_seconds_total",
    "process_resident_memory_bytes",
)  # fmt: skip


def _wanted_lines(text: str) -> str:
    """Only the families read here (and their # HELP/# TYPE lines): Milvus publishes thousands of lines, and parsing
    them all held the master's hub for a noticeable time per scrape; the parser still reads what is kept."""
    keep = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") and line.count(" ") >= 2 else line
        if name.startswith(_WANTED):
            keep.append(line)
    return "\n".join(keep) + "\n"


def parse(text: str, at: float) -> Snapshot:
    """A ``/metrics`` text as a snapshot; series of several proxies (``node_id``) are added up."""
    snap = Snapshot(at)
    text = _wanted_lines(text)
    wanted = {name: names for name, _, names in LATENCY_SOURCES}
    latency: dict[tuple[str, str], Histogram] = {}  # (source, function) -> histogram, before picking a source
    for family in text_string_to_metric_families(text):
        if family.name == "milvus_proxy_req_count":
            for s in family.samples:  # the parser names a counter's samples <family>_total
                key = (s.labels.get("function_name", ""), s.labels.get("status", ""))
                snap.requests[key] = snap.requests.get(key, 0.0) + s.value
        elif family.name in wanted:
            _add_latency(latency, family, wanted[family.name])
        elif family.name == "process_cpu_seconds":
            snap.cpu_seconds = sum(s.value for s in family.samples)
        elif family.name == "process_resident_memory_bytes":
            snap.rss_bytes = sum(s.value for s in family.samples)
    for name, _, _ in LATENCY_SOURCES:  # a function's first source wins: sq/mutation are the operation's own time
        for (source, function), h in latency.items():
            if source == name and function not in snap.latency:
                snap.latency[function], snap.sources[function] = h.sorted(), source
    return snap


def scrape(url: str, timeout: float = SCRAPE_TIMEOUT_S) -> Snapshot:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode("utf-8", "replace")
    return parse(text, time.time())


def redact(url: str) -> str:
    """The URL without any user:password@ (a metrics proxy may take basic auth)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


# ---- from snapshots to the section -----------------------------------------------------------------------------


def _counter_increase(before: float | None, after: float | None) -> float:
    if before is None or after is None:
        return 0.0
    return after - before if after >= before else after


def _window(samples: list[Snapshot]) -> tuple[dict[tuple[str, str], float], dict[str, Histogram], float]:
    """Requests, latency histograms and CPU seconds between the first and last snapshot, reset-aware."""
    requests: dict[tuple[str, str], float] = {}
    latency: dict[str, Histogram] = {}
    cpu = 0.0
    for a, b in itertools.pairwise(samples):
        for key, value in b.requests.items():
            requests[key] = requests.get(key, 0.0) + _counter_increase(a.requests.get(key, 0.0), value)
        for function, h in b.latency.items():
            prev = a.latency.get(function, Histogram(list(h.bounds), [0.0] * len(h.bounds)))
            delta = h.minus(prev)
            latency[function] = latency[function].plus(delta) if function in latency else delta
        cpu += _counter_increase(a.cpu_seconds, b.cpu_seconds)
    return requests, latency, cpu


def latency_figures(h: Histogram) -> dict[str, float]:
    out: dict[str, float] = {"count": h.count, "mean_ms": h.sum / h.count if h.count else 0.0}
    for key, q in QUANTILES.items():
        value, le = h.quantile(q)
        out[key] = value
        out[key.replace("_ms", "_le_ms")] = le
    return out


def build_section(samples: list[Snapshot], *, url: str, errors: int = 0) -> dict[str, Any]:
    """The ``server`` section from a run's snapshots (first: at test start; last: at test stop)."""
    out: dict[str, Any] = {"format": FORMAT, "source": redact(url), "interval_s": SCRAPE_INTERVAL_S}
    out.update(scrapes=len(samples), errors=errors)
    if len(samples) < 2:
        return {**out, "available": False}
    requests, latency, cpu = _window(samples)
    window = samples[-1].at - samples[0].at
    ops: dict[str, dict[str, Any]] = {}
    for (function, status), n in sorted(requests.items()):
        if n > 0:
            ops.setdefault(function, {"requests": {}})["requests"][status] = round(n)
    for function, h in sorted(latency.items()):
        if h.count > 0:
            entry = ops.setdefault(function, {"requests": {}})
            entry["latency"] = {**latency_figures(h), "source": samples[-1].sources.get(function, "")}
            entry["latency"]["buckets"] = {"le_ms": h.bounds, "cumulative": h.cumulative}  # to merge or re-cut later
    process: dict[str, Any] = {}
    if samples[-1].cpu_seconds is not None:
        process.update(cpu_seconds=cpu, cpu_cores=cpu / window if window > 0 else 0.0)
    rss = [s.rss_bytes for s in samples if s.rss_bytes is not None]
    if rss:
        process.update(rss_bytes_max=max(rss), rss_bytes_last=rss[-1])
    return {**out, "available": True, "window_s": window, "operations": ops, "process": process,
            "timeline": timeline(samples)}  # fmt: skip


def timeline(samples: list[Snapshot]) -> list[dict[str, Any]]:
    """One point per scrape interval: successful calls/s and p99 per function, CPU cores, resident memory."""
    points = []
    start = samples[0].at if samples else 0.0
    for a, b in itertools.pairwise(samples):
        requests, latency, cpu = _window([a, b])
        dt = b.at - a.at
        if dt <= 0:
            continue
        rates = {f: n / dt for (f, status), n in requests.items() if status == "success" and n > 0}
        p99 = {f: h.quantile(0.99)[0] for f, h in latency.items() if h.count > 0}
        point: dict[str, Any] = {"t": round(b.at - start, 3), "rps": rates, "p99_ms": p99}
        if b.cpu_seconds is not None:
            point["cpu_cores"] = cpu / dt
        if b.rss_bytes is not None:
            point["rss_bytes"] = b.rss_bytes
        points.append(point)
    return points


def summary_lines(
    section: dict[str, Any], requests: list[dict[str, Any]], server_function: Callable[[str, str], str | None]
) -> list[str]:
    """One line per Milvus operation: "client p99 X ms / server p99 Y ms", each client row (sync, async...) that
    calls it named, then the server process's load. The server cannot tell our rows apart: its figure covers them all.
    ``server_function``: a row's Milvus function (``loadgen.clients.server_function``, from the operation records).
    """
    if not section or not section.get("available"):
        return []
    ops = section.get("operations", {})
    clients: dict[str, list[str]] = {}
    for m in requests:
        function = server_function(str(m.get("type", "")), str(m.get("name", "")))
        if function and m.get("requests") and ops.get(function, {}).get("latency"):
            clients.setdefault(function, []).append(f"{m['p99_ms']:.3f} ms ({m['type']} {m['name']})")
    lines = []
    for function, client in sorted(clients.items()):
        lat = ops[function]["latency"]
        lines.append(
            f"{function}: client p99 {', '.join(client)} / server p99 {lat['p99_ms']:.3f} ms "
            f"(<= {lat['p99_le_ms']:g} ms; {int(lat['count'])} calls)"
        )
    proc = section.get("process", {})
    if "cpu_cores" in proc or "rss_bytes_max" in proc:
        cpu = f"{proc['cpu_cores']:.2f} cores" if "cpu_cores" in proc else "cpu not exposed"
        mem = f", {proc['rss_bytes_max'] / 2**20:.0f} MiB resident at most" if "rss_bytes_max" in proc else ""
        lines.append(f"Milvus process ({section['source']}): {cpu}{mem}")
    return lines


# ---- the scraper ---------------------------------------------------------------------------------------------


class ServerScraper:
    """On the master or local runner: a snapshot at test start, one every ``interval`` seconds, one at test stop;
    ``server.json`` written at stop. ``live()`` gives the section so far (web UI, Prometheus export)."""

    def __init__(
        self, environment: Any, url: str, out_path: OutPath = None, interval: float = SCRAPE_INTERVAL_S
    ) -> None:
        self.environment, self.url, self.out_path, self.interval = environment, url, out_path, interval
        self.samples: list[Snapshot] = []
        self.errors = 0
        self._greenlet: Any = None
        self._running = False
        self.at_stop = True  # whether the window closed with a snapshot at the stop (see on_test_stop)
        environment.events.test_start.add_listener(self.on_test_start)
        environment.events.test_stop.add_listener(self.on_test_stop)
        environment.events.quitting.add_listener(self.on_test_stop)
        environment.events.reset_stats.add_listener(self.on_stats_reset)
        self._generation = 0  # a scrape begun before a reset of the statistics is not kept after it

    def take(self, attempts: int = 1) -> bool:
        generation = self._generation
        for attempt in range(attempts):
            try:
                sample = scrape(self.url)
                if generation == self._generation:
                    self.samples.append(sample)
                return True
            except Exception as exc:  # the server may be slow or gone (a fault test): the run goes on
                self.errors += 1
                if self.errors == 1 or attempt == attempts - 1:
                    log.warning("could not scrape Milvus metrics at %s: %s", redact(self.url), exc)
        return False

    def _loop(self) -> None:
        import gevent

        while self._running:
            gevent.sleep(self.interval)
            if self._running:
                self.take()

    def on_test_start(self, **_: Any) -> None:
        import gevent

        self.stop_loop()
        self.samples, self.errors, self._running, self.at_stop = [], 0, True, True
        self.take()
        self._greenlet = gevent.spawn(self._loop)

    def on_stats_reset(self, **_: Any) -> None:
        """Locust reset its statistics: the server's figures start again from a scrape taken now (in a greenlet
        of its own: a reset must not wait for the server)."""
        import gevent

        if not self._running:
            return
        self._generation += 1
        self.samples = []
        gevent.spawn(self.take)

    def stop_loop(self) -> None:
        self._running = False
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None

    def on_test_stop(self, **_: Any) -> None:
        if not self._running:
            return  # quitting after test_stop: already written
        self.stop_loop()
        # the last snapshot closes the window every figure is counted over: a busy server gets a few tries, and a
        # window that could not be closed at the stop says so (its counts then end at the last scrape before it)
        self.at_stop = self.take(attempts=3)
        self.write()

    def live(self) -> dict[str, Any]:
        section = build_section(self.samples, url=self.url, errors=self.errors)
        if not self._running and not self.at_stop and section.get("available"):
            section["ends_before_stop"] = True  # the stop's scrape failed: the last calls are not counted here
        return section

    def write(self) -> None:
        write_json(self.out_path, self.live())


def read_section(path: Path) -> dict[str, Any]:
    """``server.json`` as results.json's ``server`` section ({} when the run scraped nothing)."""
    return json.loads(path.read_text()) if path.exists() else {}
