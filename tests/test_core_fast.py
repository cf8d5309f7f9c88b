"""The fast tier: loadgen's users, timing, statistics, results and checks under real Locust processes, on the fake
store (``loadgen.clients.fake``): no Milvus, a few seconds each (``make test-fast``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_cli

from loadgen.milvus.server import free_ports
from loadgen.stats.checks import Checks, evaluate, qps
from loadgen.stats.results import render_table

LOCUSTFILE = "tests/locustfiles/fake_users.py"
MIX = "search=6,insert=2,delete=1,fail=1,embed_search=1,fanout=1"


def locust(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """A plain ``locust`` command, as a user (or a Kubernetes pod) runs it."""
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def headless(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = locust("--headless", "-u", "4", "-r", "4", "-t", "3s", "--results-dir", str(out), *args)
    assert (out / "results.json").exists(), proc.stderr[-3000:]
    return proc, json.loads((out / "results.json").read_text())


def by_key(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["type"], m["name"]): m for m in results["requests"]}


def test_rows_are_store_calls_and_every_figure_is_defined_once(tmp_path: Path) -> None:
    proc, res = headless(tmp_path / "out", "--weights", MIX)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the fail task's failures: Locust's exit code for failures
    rows = by_key(res)
    # single calls in the sync and async rows; fan-out calls apart, and their batches a statistic of their own
    assert {t for t, _ in rows} == {"fake", "fake-async", "fake-async-fanout"}
    assert ("fake", "search") in rows and ("fake-async", "asearch") in rows
    fanout = rows[("fake-async-fanout", "asearch")]
    [batch] = res["batches"]
    assert batch["name"] == "asearch[10]" and fanout["requests"] == 10 * batch["count"] > 0
    # embedding time is each row's own statistic, never a row, and spent inside the calls that embed
    assert "embedding" in rows[("fake", "embed_search")] and "embedding" not in rows[("fake", "search")]
    # prepared once, at init: test_start (with the master's total_users) must not prepare again
    assert proc.stderr.count("fake collection fake ready:") == 1, proc.stderr[-3000:]
    # one fail ratio: failed store calls / store calls, over every row
    t = res["totals"]
    failed = rows[("fake", "fail")]["requests"] + rows[("fake-async", "afail")]["requests"]
    assert t["failures"] == failed > 0 and t["requests"] == sum(m["requests"] for m in res["requests"])
    assert t["fail_ratio"] == pytest.approx(failed / t["requests"])
    # latency over successes; rates over one window, adding up to the total
    for m in res["requests"]:
        assert m["successes"] == m["requests"] - m["failures"]
        assert m["rps"] == pytest.approx(m["requests"] / t["window_s"])
    assert rows[("fake", "fail")]["successes"] == 0 and rows[("fake", "fail")]["p99_ms"] == 0.0
    assert qps(res) == t["qps"] == pytest.approx(sum(m["rps"] for m in res["requests"]))
    # the summary table prints the same figures
    table = render_table(res)
    total_line = next(line for line in table.splitlines() if " TOTAL " in f" {line} ")
    assert total_line.split()[1:4] == [str(t["requests"]), str(t["failures"]), f"{t['qps']:.1f}"]
    # deletes before the user inserted anything have nothing of their own to delete: skipped, not faked
    assert all(k.endswith("delete") for k in res.get("skipped", {}))


def test_failed_checks_exit_3_under_a_plain_locust_command(tmp_path: Path) -> None:
    proc, res = headless(tmp_path / "out", "--weights", "search=1,fail=1", "--check-fail-ratio", "0.01")
    assert proc.returncode == 3, proc.stderr[-2000:]
    [line] = res["checks"]["failed"]
    assert line.startswith("check failed: fail ratio") and line in proc.stderr
    assert evaluate(Checks(fail_ratio=0.01), res) == [line]  # the same function, the same figures
    ok, res = headless(tmp_path / "ok", "--weights", "search=1", "--check-fail-ratio", "0.01", "--check-p99-ms", "1e4")
    assert ok.returncode == 0 and res["checks"]["failed"] == [], ok.stderr[-2000:]


def test_report_reads_the_same_figures(tmp_path: Path) -> None:
    _, res = headless(tmp_path / "out", "--weights", "search=1,insert=1")
    report = run_cli("report", str(tmp_path / "out"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    levels = {(c["type"], c["name"]): c["levels"] for c in doc["analysis"]["curves"]}
    for key, m in by_key(res).items():
        [level] = levels[key]
        assert (level["qps"], level["p99_ms"], level["requests"]) == (m["rps"], m["p99_ms"], m["requests"]), key


def test_web_ui_serves_the_results_json_the_run_writes(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    out = tmp_path / "out"
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    ui = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", "--web-host", "127.0.0.1",
         "--web-port", str(port), "--autostart", "-u", "4", "-r", "4", "-t", "3s", "--autoquit", "60",
         "--results-dir", str(out), "--weights", "search=3,fail=1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        live: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                state = json.loads(urllib.request.urlopen(f"{base}/stats/requests", timeout=5).read())["state"]
            except OSError:
                continue
            if state == "stopped":  # no call is made after this: the figures are final
                live = json.loads(urllib.request.urlopen(f"{base}/loadgen/results.json", timeout=5).read())
                break
        assert live, "the test never stopped"
    finally:
        ui.terminate()
        _, err = ui.communicate(timeout=60)
    written = json.loads((out / "results.json").read_text())
    assert live["totals"] == written["totals"] and live["totals"]["requests"] > 0, err[-2000:]
    assert live["requests"] == written["requests"]
    assert ui.returncode == 1  # the fail task failed: Locust's own exit code, from the same stats


def test_a_freshness_probe_is_a_write_row_then_a_row_per_query(tmp_path: Path) -> None:
    """The write is one row, each visibility query another (the fake client shows a write ``LAG_QUERIES`` queries
    later); the freshness time is only in results.json's ``retrieval`` statistic, one per probe that finished."""
    from loadgen.clients.fake import LAG_QUERIES

    proc, res = headless(tmp_path / "out", "--weights", "freshness_probe=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows, fresh = by_key(res), res["retrieval"]["freshness"]
    users = 2  # of each class: -u 4 over the sync and the async user
    assert {t for t, _ in rows} == {"fake", "fake-async"}
    for kind in ("fake", "fake-async"):
        writes = rows[(kind, "freshness_probe")]["requests"]
        queries = rows[(kind, "query[freshness]")]["requests"]
        seen = sum(v["count"] for key, v in fresh.items() if key.split()[-1] == kind)
        # a probe the end of the run cut short (one per user at most) has its write and some of its queries
        assert writes > users and writes - users <= seen <= writes, (kind, writes, seen)
        assert LAG_QUERIES * seen <= queries <= LAG_QUERIES * seen + (LAG_QUERIES - 1) * users, (kind, queries, seen)
    assert res["totals"]["requests"] == sum(m["requests"] for m in res["requests"])


def test_query_vectors_are_fresh_shaped_and_normalized() -> None:
    import numpy as np

    from loadgen.workload.rows import RowFactory

    rows = RowFactory(8, "COSINE", seed=3)
    drawn = [rows.query() for _ in range(600)]  # more than one block
    assert all(len(q) == 1 and len(q[0]) == 8 and isinstance(q[0][0], float) for q in drawn)
    assert len({tuple(q[0]) for q in drawn}) == 600  # every search gets a vector of its own
    assert np.allclose([np.linalg.norm(q[0]) for q in drawn], 1.0, atol=1e-5)
    again = RowFactory(8, "COSINE", seed=3)
    assert [again.query() for _ in range(600)] == drawn  # seeded: the same run draws the same queries
