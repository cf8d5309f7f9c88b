"""Milvus's own metrics in every run (issue 16): the scraper's arithmetic on synthetic histograms, and a real run
whose server section is checked against the server's counters and our own microsecond histograms."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import run_cli, server_counter
from hdrh.histogram import HdrHistogram

from loadgen.clients import server_function
from loadgen.milvus.server import ServerInfo
from loadgen.stats import server_metrics as sm
from loadgen.stats.histograms import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, LatencyHistograms

BOUNDS = [1.0, 2.0, 4.0, 8.0, 16.0]


def histogram(values: list[float]) -> sm.Histogram:
    """A Prometheus histogram of ``values`` (cumulative buckets), built the way a server would observe them."""
    return sm.Histogram(
        list(BOUNDS), [float(sum(v <= b for v in values)) for b in BOUNDS], float(len(values)), float(sum(values))
    )


def snapshot(at: float, searches: list[float], cpu: float, rss: float) -> sm.Snapshot:
    snap = sm.Snapshot(at, cpu_seconds=cpu, rss_bytes=rss)
    snap.requests[("Search", "success")] = float(len(searches))
    snap.latency["Search"], snap.sources["Search"] = histogram(searches), "milvus_proxy_sq_latency"
    return snap


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    rng = random.Random(7)
    values = [rng.uniform(2.0, 4.0) for _ in range(1000)]  # all in the (2, 4] bucket
    value, le = histogram(values).quantile(0.5)
    assert le == 4.0
    assert value == pytest.approx(3.0)  # uniform inside the bucket: the middle
    value, le = histogram([*values, 100.0]).quantile(1.0)  # past the last finite bucket: its bound, and "no bound"
    assert value == BOUNDS[-1] and le == float("inf")
    assert sm.Histogram().quantile(0.99) == (0.0, 0.0)


def test_section_is_the_runs_difference_and_survives_a_server_restart() -> None:
    before = [0.5] * 40  # served before the run: not ours
    during = [0.5] * 50 + [3.0] * 45 + [6.0] * 5
    samples = [
        snapshot(100.0, before, cpu=10.0, rss=1e8),
        snapshot(102.0, before + during[:60], cpu=11.0, rss=3e8),
        # the server restarted: counters start again from zero, so the interval counts only what the new one saw
        snapshot(104.0, during[60:], cpu=0.5, rss=2e8),
    ]
    section = sm.build_section(samples, url="http://user:secret@127.0.0.1:9091/metrics")
    search = section["operations"]["Search"]
    assert search["requests"] == {"success": len(during)}
    lat = search["latency"]
    assert lat["count"] == len(during)
    assert lat["mean_ms"] == pytest.approx(sum(during) / len(during))
    assert (lat["p50_le_ms"], lat["p90_le_ms"], lat["p99_le_ms"]) == (1.0, 4.0, 8.0)
    assert section["process"]["cpu_seconds"] == pytest.approx(1.5)
    assert section["process"]["cpu_cores"] == pytest.approx(1.5 / 4.0)
    assert section["process"]["rss_bytes_max"] == 3e8
    assert "secret" not in json.dumps(section) and section["source"] == "http://127.0.0.1:9091/metrics"
    assert [p["rps"]["Search"] for p in section["timeline"]] == [60 / 2.0, 40 / 2.0]
    assert sm.build_section(samples[:1], url="http://x/metrics")["available"] is False


def test_summary_lines_pair_client_rows_with_the_server_operation() -> None:
    samples = [snapshot(0.0, [], 0.0, 1e8), snapshot(5.0, [3.0] * 10, 2.0, 2**30)]
    section = sm.build_section(samples, url="http://127.0.0.1:9091/metrics")
    requests = [
        {"type": "pymilvus", "name": "search", "requests": 6, "p99_ms": 5.5},
        {"type": "pymilvus-async", "name": "search", "requests": 4, "p99_ms": 4.25},
        {"type": "pymilvus", "name": "insert", "requests": 3, "p99_ms": 9.0},  # the server saw no insert latency
    ]
    lines = sm.summary_lines(section, requests, server_function)
    assert len(lines) == 2
    assert lines[0].startswith("Search: client p99 5.500 ms (pymilvus search), 4.250 ms (pymilvus-async search)")
    assert f"server p99 {2 + 2 * 0.99:.3f} ms (<= 4 ms; 10 calls)" in lines[0]  # 99% of the way through (2, 4]
    assert lines[1].endswith("0.40 cores, 1024 MiB resident at most")
    assert server_function("langchain-async", "asimilarity_search") == "Search"
    assert server_function("llamaindex", "query") == "Search"
    assert server_function("pymilvus", "query") == "Query"
    assert server_function("pymilvus-async", "query[count]") == "Query"  # the async row's name, from its record
    assert server_function("retrieval-async", "hybrid_search_rrf") == "HybridSearch"  # read off the records
    assert server_function("retrieval", "search_iterator") is None  # several calls per row: not one function
    assert server_function("pymilvus-async-fanout", "search") == "Search"
    assert server_function("pymilvus-async-batch", "search_fanout[10]") is None


# ---- against the real embedded Milvus --------------------------------------------------------------------------


def client_count_at_most(hist: LatencyHistograms, keys: list[tuple[str, str]], bound_ms: float) -> int:
    """Successful client calls that took at most ``bound_ms`` (HDR's highest equivalent value: never undercounted
    time)."""
    total = 0
    for key in keys:
        series = hist._series[key].hist
        for item in series.get_recorded_iterator():
            if item.value_iterated_to <= bound_ms * 1000:
                total += item.count_at_value_iterated_to
    return total


@pytest.mark.milvus
@pytest.mark.slow
def test_server_section_matches_the_servers_counters_and_our_latencies(milvus: ServerInfo, tmp_path: Path) -> None:
    before = server_counter(milvus, "Search")
    out = tmp_path / "out"
    proc = run_cli(
        "run", "--host", milvus.uri, "--milvus-metrics-url", milvus.metrics_url, "-u", "4", "-t", "6s",
        "--rows", "1000", "--dim", "16", "--weights", "search=1", "--collection", "lg_server_metrics",
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = server_counter(milvus, "Search")
    section = json.loads((out / "server.json").read_text())
    assert section["available"] and section["errors"] == 0 and section["scrapes"] >= 3
    search = section["operations"]["Search"]
    # the server's count over the run is what its own counter moved by, and what our clients did
    assert search["requests"]["success"] == after - before > 0
    results = json.loads((out / "results.json").read_text())
    assert results["server"] == section  # one set of numbers: results.json carries the same section
    rows = [m for m in results["requests"] if server_function(m["type"], m["name"]) == "Search"]
    assert sum(m["requests"] for m in rows) == after - before
    # every call took at least as long at the client as inside the server: at every bucket bound the server has at
    # least as many calls at or below it as we do, so its p99 bucket is not above our p99's bucket
    hist = LatencyHistograms.from_payload(json.loads((out / "latency.json").read_text())["histograms"])
    keys = [(m["type"], m["name"]) for m in rows]
    lat = search["latency"]
    assert lat["count"] == sum(m["successes"] for m in rows)
    for bound, server_cum in zip(lat["buckets"]["le_ms"], lat["buckets"]["cumulative"], strict=True):
        assert client_count_at_most(hist, keys, bound) <= server_cum, bound
    merged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for key in keys:
        merged.add(hist._series[key].hist)
    client_p99_ms = merged.get_value_at_percentile(99.0) / 1000.0
    client_bucket = min(b for b in lat["buckets"]["le_ms"] if b >= client_p99_ms)
    assert lat["p99_le_ms"] <= client_bucket
    assert lat["p99_ms"] <= client_bucket  # interpolated: within the bucket, never past ours
    # the summary shows both sides
    assert "Search: client p99" in proc.stdout and "server p99" in proc.stdout


def test_parse_reads_an_exposition_made_by_prometheus_client() -> None:
    """The text format as a real Prometheus client writes it (two proxies, an unrelated family next to ours)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
    from prometheus_client import Histogram as PromHistogram

    reg = CollectorRegistry()
    buckets = [1, 2, 4, 8]
    sq = PromHistogram("milvus_proxy_sq_latency", "", ["node_id", "query_type"], buckets=buckets, registry=reg)
    other = PromHistogram("milvus_proxy_sq_wait_result_latency", "", ["node_id"], buckets=buckets, registry=reg)
    req = Counter("milvus_proxy_req_count", "", ["node_id", "function_name", "status"], registry=reg)
    Gauge("process_resident_memory_bytes", "", registry=reg).set(5e8)
    for node, values in (("1", [0.5, 3.0]), ("2", [6.0])):
        for v in values:
            sq.labels(node, "search").observe(v)
            other.labels(node).observe(100.0)
            req.labels(node, "Search", "success").inc()
    snap = sm.parse(generate_latest(reg).decode(), at=1.0)
    assert snap.requests == {("Search", "success"): 3.0}
    h = snap.latency["Search"]
    assert (h.bounds, h.cumulative, h.count, h.sum) == ([1.0, 2.0, 4.0, 8.0], [1.0, 1.0, 2.0, 3.0], 3.0, 9.5)
    assert snap.sources == {"Search": "milvus_proxy_sq_latency"} and snap.rss_bytes == 5e8 and snap.cpu_seconds is None


def test_every_operation_names_the_server_function_it_calls_or_is_known_not_to() -> None:
    """``Operation.server`` is declared with the operation: a new operation without it shows up here."""
    from loadgen import clients

    layers = [layer for layer in clients.layers() if layer != "fake"]  # the test double, registered by other tests
    unnamed = {(layer, name) for layer in layers
               for name, op in clients.adapter(layer).operations.items() if not op.server}  # fmt: skip
    # iterators make several calls per row; the freshness write is an insert or a delete, by turns
    assert unnamed == {("retrieval", "search_iterator"), ("retrieval", "query_iterator"),
                       ("retrieval", "freshness_probe")}  # fmt: skip
