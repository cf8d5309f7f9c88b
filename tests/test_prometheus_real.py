"""A real Prometheus (Debian's, ``make prometheus``) scrapes the master's ``--prometheus-port`` and the embedded
Milvus's metrics every second during an open-model run; every PromQL expression of the shipped Grafana dashboard
returns series, and what Prometheus stored agrees with results.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
DASHBOARD = json.loads((ROOT / "k8s" / "components" / "monitoring" / "grafana-dashboard.json").read_text())
RATE = 40.0  # the open model's target, requests per second


class Prometheus:
    """``prometheus`` as a plain process on loopback, scraping ``targets`` (host:port) every second."""

    def __init__(self, tmp: Path, targets: dict[str, str]) -> None:
        (self.port,) = free_ports(1)
        jobs = "".join(
            f"  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{host}']\n"
            for job, url in targets.items()
            for host, path in [urllib.parse.urlsplit(url)[1:3]]
        )
        tmp.mkdir(parents=True, exist_ok=True)
        config = tmp / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}")
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        url = f"http://127.0.0.1:{self.port}/api/v1/query?{urllib.parse.urlencode(params)}"
        answer = json.loads(urllib.request.urlopen(url, timeout=10).read())
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def up(self) -> bool:
        try:
            return len(self.query("up == 1")) == 2
        except OSError:
            return False

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _expressions() -> list[str]:
    return [t["expr"] for panel in DASHBOARD["panels"] for t in panel["targets"]]


def _until(cond: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.fixture
def locust_run(milvus: ServerInfo, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """An open-model run with searches, inserts and recall; the process (and its endpoint) stays up after the test
    stopped (``--autoquit``), until the fixture ends it."""
    web_port, prom_port = free_ports(2)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "pymilvus_users.py"),
        "--autostart", "--autoquit", "120", "-u", "4", "-r", "4", "-t", "14s",
        "--web-host", "127.0.0.1", "--web-port", str(web_port), "--host", milvus.uri,
        "--prometheus-port", str(prom_port), "--results-dir", str(tmp_path), "--milvus-metrics-url", milvus.metrics_url,
        "--dataset", "synthetic:uniform", "--rows", "1000", "--dim", "16", "--weights", "search=4,insert=1",
        "--arrival-rate", f"{RATE:g}", "--collection", "lg_prometheus_real",
    ]  # fmt: skip
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, prom_port, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_real_prometheus_runs_every_dashboard_query(
    milvus: ServerInfo, locust_run: tuple[subprocess.Popen[str], int, Path], tmp_path: Path
) -> None:
    assert shutil.which("prometheus"), "Debian's prometheus is missing: run `make prometheus`"
    proc, prom_port, out = locust_run
    prom = Prometheus(tmp_path / "prom", {"loadgen": f"http://127.0.0.1:{prom_port}/metrics",
                                          "milvus": milvus.metrics_url})  # fmt: skip
    try:
        _until(prom.up, 60, "Prometheus did not scrape both targets: " + prom.log.read_text()[-2000:])
        _until(lambda: bool(prom.query("sum(loadgen_requests_total) > 100")), 120, "no load reached Prometheus")
        time.sleep(5)  # the rate windows fill with several scrapes of the running load
        mid = time.time()
        empty = [expr for expr in _expressions() if not prom.query(expr, mid)]
        assert not empty, f"dashboard queries without data: {empty}"
        client_rate = sum(float(r["value"][1]) for r in prom.query("sum(rate(loadgen_requests_total[5s]))", mid))
        server_rate = sum(
            float(r["value"][1])
            for r in prom.query('sum(rate(milvus_proxy_req_count{status="success",function_name="Search"}[5s]))', mid)
        )
        _until(lambda: (out / "latency.json").exists() or proc.poll() is not None, 90, "the run did not stop")
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        time.sleep(3)  # a few scrapes of the stopped test's final figures
        final = {(r["metric"]["type"], r["metric"]["name"]): float(r["value"][1])
                 for r in prom.query("loadgen_requests_total")}  # fmt: skip
        p99 = {(r["metric"]["type"], r["metric"]["name"]): float(r["value"][1])
               for r in prom.query('loadgen_request_latency_microseconds{quantile="0.99"}')}  # fmt: skip
    finally:
        prom.stop()
    proc.send_signal(signal.SIGTERM)  # Locust quits: results.json is written
    proc.wait(60)
    results = json.loads((out / "results.json").read_text())
    rows = {(m["type"], m["name"]): m for m in results["requests"]}
    assert final == {key: float(m["requests"]) for key, m in rows.items()}  # what Prometheus stored, exactly
    assert p99 == {key: float(round(m["p99_ms"] * 1000)) for key, m in rows.items() if m["successes"]}
    # rates over a 5 s window of 1 s scrapes: the open model's target, and the server counting the same searches
    assert RATE * 0.75 <= client_rate <= RATE * 1.25, client_rate
    searches = sum(m["rps"] for (_, name), m in rows.items() if name == "search")
    assert searches * 0.6 <= server_rate <= searches * 1.4 + 5, (server_rate, searches)
