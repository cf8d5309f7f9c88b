"""``--prometheus-port`` (issue 16): the master's endpoint shows the figures the run's results files hold.

The run is a real open-model search load with recall against the embedded Milvus, started by Locust itself
(``--autostart``/``--autoquit`` keep the process, and its endpoint, up after the test stopped and wrote its files).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from prometheus_client.parser import text_string_to_metric_families

from loadgen.locust.exporter import wire_names
from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, metric: str, /, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def test_endpoint_equals_results_json_at_the_end(milvus: ServerInfo, tmp_path: Path) -> None:
    web_port, prom_port = free_ports(2)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pymilvus_users.py"),
        "--autostart", "--autoquit", "120", "-u", "4", "-r", "4", "-t", "5s",
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", milvus.uri,
        "--prometheus-port", str(prom_port), "--results-dir", str(tmp_path), "--milvus-metrics-url", milvus.metrics_url,
        "--dataset", "synthetic:uniform", "--rows", "1000", "--dim", "16", "--weights", "search=1",
        "--arrival-rate", "40", "--collection", "lg_prometheus", "--nq", "2",
    ]  # fmt: skip
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 150
        while not (tmp_path / "latency.json").exists():  # written when the test stops; the process stays up
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not stop in time"
            time.sleep(0.2)
        samples = scrape(prom_port)
    finally:
        proc.send_signal(signal.SIGTERM)  # Locust quits: results.json is written, the collection dropped
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert {name for name, _ in samples} <= wire_names()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["requests"]
    for row in results["requests"]:
        key = {"type": row["type"], "name": row["name"]}
        assert value(samples, "loadgen_requests_total", **key) == row["requests"]
        assert value(samples, "loadgen_request_failures_total", **key) == row["failures"]
        assert value(samples, "loadgen_request_successes_total", **key) == row["successes"]
        for field, q in (("p50_ms", "0.5"), ("p90_ms", "0.9"), ("p99_ms", "0.99"), ("p99_9_ms", "0.999")):
            got = value(samples, "loadgen_request_latency_microseconds", **key, quantile=q)
            assert got == round(row[field] * 1000), (key, field)
        if row["name"] == "search":  # --nq 2: the query vectors and the answers' bytes, as counters
            assert value(samples, "loadgen_query_vectors_total", **key) == row["query_vectors"] == 2 * row["requests"]
            assert value(samples, "loadgen_response_bytes_total", **key) == row["response_bytes_total"] > 0
            assert value(samples, "loadgen_response_bytes_calls_total", **key) == row["response_bytes_calls"]
    assert results["recall"]
    for key_text, r in results["recall"].items():
        request_type, name = key_text.split(" ", 1)
        key = {"type": request_type, "name": name}
        assert value(samples, "loadgen_recall", **key, stat="mean") == r["mean"]
        assert value(samples, "loadgen_recall_samples_total", **key) == r["count"]
    by_type = results["open_loop"]["by_type"]
    assert by_type
    for kind, c in by_type.items():
        assert value(samples, "loadgen_open_target_rate", type=kind) == c["target_rate"]
        for outcome in ("intended", "sent", "late", "dropped"):
            assert value(samples, "loadgen_open_sends_total", type=kind, outcome=outcome) == c[outcome]
    generator = results["generator"]
    assert generator["nodes"]
    for node, figures in generator["nodes"].items():
        assert value(samples, "loadgen_generator_cpu_share", node=node) == figures["cpu_share"]
    assert value(samples, "loadgen_generator_saturated") == float(generator["saturated"])
    # Milvus's own view is in results.json too, under every way of running (here: a plain locust command)
    search_calls = sum(r["successes"] for r in results["requests"] if r["name"] == "search")
    assert not results["server"].get("ends_before_stop"), "the stop's scrape of Milvus failed three times"
    assert results["server"]["operations"]["Search"]["requests"]["success"] >= search_calls > 0
