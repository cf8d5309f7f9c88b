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


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_endpoint_equals_the_results_files_at_the_end(milvus: ServerInfo, tmp_path: Path) -> None:
    web_port, prom_port = free_ports(2)
    files = {name: tmp_path / f"{name}.json" for name in ("latency", "recall", "open_loop", "generator")}
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pymilvus_users.py"),
        "--autostart", "--autoquit", "120", "-u", "4", "-r", "4", "-t", "5s",
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", milvus.uri,
        "--prometheus-port", str(prom_port), "--latency-file", str(files["latency"]),
        "--recall-file", str(files["recall"]), "--open-loop-file", str(files["open_loop"]),
        "--generator-file", str(files["generator"]), "--dataset", "synthetic:uniform", "--rows", "1000",
        "--dim", "16", "--weights", "search=1", "--arrival-rate", "40", "--collection", "lg_prometheus",
    ]  # fmt: skip
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 150
        while not all(f.exists() for f in files.values()):  # written at test stop; the process stays up
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not stop in time"
            time.sleep(0.2)
        samples = scrape(prom_port)
        assert {name for name, _ in samples} <= wire_names() | {f"{n}_created" for n in wire_names()}
        latency = json.loads(files["latency"].read_text())
        assert latency["requests"]
        for row in latency["requests"]:
            key = {"type": row["type"], "name": row["name"]}
            assert value(samples, "loadgen_requests_total", **key) == row["count"]
            for field, q in (("p50_ms", "0.5"), ("p90_ms", "0.9"), ("p99_ms", "0.99"), ("p99_9_ms", "0.999")):
                got = value(samples, "loadgen_request_latency_microseconds", **key, quantile=q)
                assert got == round(row[field] * 1000), (key, field)
        recall = json.loads(files["recall"].read_text())["requests"]
        assert recall
        for row in recall:
            key = {"type": row["type"], "name": row["name"]}
            assert value(samples, "loadgen_recall", **key, stat="mean") == pytest.approx(row["mean"], abs=0)
            assert value(samples, "loadgen_recall_samples_total", **key) == row["count"]
        open_loop = json.loads(files["open_loop"].read_text())["by_type"]
        assert open_loop
        for kind, c in open_loop.items():
            assert value(samples, "loadgen_open_target_rate", type=kind) == c["target_rate"]
            for outcome in ("intended", "sent", "late", "dropped"):
                assert value(samples, "loadgen_open_sends_total", type=kind, outcome=outcome) == c[outcome]
        generator = json.loads(files["generator"].read_text())
        for node, figures in generator["nodes"].items():
            assert value(samples, "loadgen_generator_cpu_share", node=node) == figures["cpu_share"]
        assert value(samples, "loadgen_generator_saturated") == float(generator["saturated"])
    finally:
        proc.send_signal(signal.SIGTERM)  # Locust quits cleanly (drops the collection it created)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
