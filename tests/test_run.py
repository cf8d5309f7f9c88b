"""Headless runs through `loadgen run` and plain `locust`, against the real embedded Milvus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, server_counter
from pymilvus import MilvusClient

from loadgen.clients import adapter
from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
# every operation of the table runs (an operation added there is tested here), the classic mix weighted up
MIX = {"insert": 2, "search": 4, "delete": 2}
ALL_TASKS = ",".join(f"{op}={MIX.get(op, 1)}" for op in adapter("pymilvus").operations) + ",fanout=1"
SMALL = ["--rows", "1000", "--dim", "32"]


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def by_key(results: dict) -> dict[tuple[str, str], dict]:
    return {(m["type"], m["name"]): m for m in results["requests"]}


def test_every_task_of_both_users_succeeds_and_searches_match_server(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    searches_before = server_counter(milvus, "Search")
    out = tmp_path / "out"
    proc = run_cli(
        "run", "--host", milvus.uri, "-u", "6", "-t", "8s", *SMALL, "--weights", ALL_TASKS,
        "--collection", "lg_run_all", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(out)
    stats = by_key(res)
    for op in adapter("pymilvus").operations.values():  # every record of the table, whatever it is named
        for layer, use_async in (("pymilvus", False), ("pymilvus-async", True)):
            key = (layer, op.request_name(use_async))
            assert stats[key]["requests"] > 0, key
            assert stats[key]["failures"] == 0, (key, res["failures"])
    # fan-out calls are rows of their own (another concurrency), so single async calls compare like with like
    fanout = stats[("pymilvus-async-fanout", "search")]
    assert fanout["requests"] > 0 and fanout["failures"] == 0 and fanout["requests"] % 10 == 0
    assert [b["name"] for b in res["batches"]] == ["search[10]"]
    assert res["batches"][0]["count"] * 10 == fanout["requests"]
    assert {m["type"] for m in res["requests"]} == {"pymilvus", "pymilvus-async", "pymilvus-async-fanout"}
    assert res["totals"]["failures"] == 0
    # percentiles come from our microsecond HDR histograms, one sample per successful request
    assert res["run"]["percentiles_from"] == "hdr"
    for m in res["requests"]:
        assert m["successes"] == m["requests"] - m["failures"], m
        assert m["p50_ms"] <= m["p99_ms"] <= m["p99_9_ms"] <= m["max_ms"]
    # what we counted is what the server served, one for one
    ours = sum(m["requests"] for m in res["requests"] if m["name"] == "search")
    assert server_counter(milvus, "Search") - searches_before == ours
    # results, report, CSV written; the summary table printed; the collection we created is gone
    assert (out / "report.html").stat().st_size > 0 and (out / "stats_stats.csv").exists()
    assert "TOTAL" in proc.stdout and "pymilvus-async-fanout" in proc.stdout
    assert res["settings"]["collection"] == "lg_run_all" and "milvus_token" not in res["settings"]
    assert not client.has_collection("lg_run_all")


def test_fifty_mixed_users_finish_without_hanging(milvus: ServerInfo, tmp_path: Path) -> None:
    start = time.monotonic()
    proc = run_cli(
        "run", "--host", milvus.uri, "-u", "50", "-r", "50", "-t", "10s", *SMALL,
        "--collection", "lg_fifty", "--out", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - start < 150
    stats = by_key(results_of(tmp_path))
    assert stats[("pymilvus", "search")]["requests"] > 0
    assert stats[("pymilvus-async", "search")]["requests"] > 0
    assert results_of(tmp_path)["totals"]["failures"] == 0


def test_two_worker_processes_complete_and_merge(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "--processes", "2", "-u", "8", "-t", "8s", *SMALL,
        "--collection", "lg_procs", "--out", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_worker = json.loads(proc.stderr.split("requests per worker: ", 1)[1].splitlines()[0])
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values())  # both workers did work
    res = results_of(tmp_path)
    assert res["run"]["processes"] == 2
    assert res["totals"]["failures"] == 0
    # the master's merged totals are exactly what the two workers reported, histograms included
    assert res["totals"]["requests"] == sum(per_worker.values())
    assert sum(m["successes"] for m in res["requests"]) == res["totals"]["requests"]
    stats = by_key(res)
    assert stats[("pymilvus-async", "search")]["requests"] > 0 and stats[("pymilvus", "search")]["requests"] > 0


def test_failed_checks_exit_3_with_one_line_each(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-u", "2", "-t", "4s", *SMALL, "--collection", "lg_checks", "--out", str(tmp_path),
        "--check-p99-ms", "0.001", "--check-min-qps", "1000000", "--check-fail-ratio", "0.5",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    failed = [line for line in proc.stderr.splitlines() if line.startswith("check failed:")]
    assert any("p99" in line for line in failed) and any("throughput" in line for line in failed)
    assert not any("fail ratio" in line for line in failed)  # 0 failures: that check passed
    assert results_of(tmp_path)["checks"]["failed"] == failed


def test_sweep_runs_each_level_and_tags_results(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "--sweep-users", "1,3", "-t", "4s", *SMALL, "--weights", "search=1",
        "--collection", "lg_sweep", "--out", str(tmp_path), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [lvl["level"] for lvl in sweep["levels"]] == [{"users": 1}, {"users": 3}]
    for users in (1, 3):
        res = results_of(tmp_path / f"users-{users}")
        assert res["run"]["level"] == {"users": users} and res["totals"]["failures"] == 0
        assert sum(m["requests"] for m in res["requests"] if m["name"] == "search") > 0  # 1 user: one class
    assert "sweep:" in proc.stdout
    assert not client.has_collection("lg_sweep")  # kept between levels, dropped after the last


def test_plain_locust_command_works(milvus: ServerInfo) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    locust = Path(sys.executable).parent / "locust"
    proc = subprocess.run(
        [str(locust), "-f", "locustfiles/pymilvus_users.py", "--headless", "-u", "4", "-t", "5s",
         "--host", milvus.uri, *SMALL, "--collection", "lg_plain", "--only-summary", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = {(e["method"], e["name"]): e for e in json.loads(proc.stdout)}
    assert entries[("pymilvus-async", "search")]["num_requests"] > 0
    assert sum(e["num_failures"] for e in entries.values()) == 0
