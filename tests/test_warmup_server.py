"""``loadgen run --warmup`` and ``--reset-stats`` against the real embedded Milvus: the HDR rows, Locust's counts, the
summary and Milvus's own figures describe the same calls, the warm-up's left out of all of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
SMALL = ["--rows", "1000", "--dim", "16", "--index-type", "FLAT", "--weights", "search=4,insert=1"]


def results_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def locust_total(out: Path) -> int:
    return sum(int(e["num_requests"]) for e in json.loads((out / "locust.json").read_text()))


def test_warmup_leaves_the_same_calls_out_of_every_figure(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-u", "4", "-r", "4", "-t", "8s", "--warmup", "4s", *SMALL,
        "--milvus-metrics-url", milvus.metrics_url, "--collection", "lg_warmup", "--out", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    assert res["run"]["warmup"]["by"] == "warmup" and res["run"]["warmup"]["warmup_s"] == 4.0
    rows = {(m["type"], m["name"]): m for m in res["requests"]}
    for m in rows.values():  # every HDR-backed row holds the calls Locust counted after the reset, and no others
        assert m["successes"] + m["failures"] == m["requests"], m
    assert res["totals"]["requests"] == locust_total(tmp_path)
    assert "warm-up: the first 4." in proc.stdout and "(reset by --warmup)" in proc.stdout  # the summary says so
    # Milvus's own count of searches starts again with ours: about the same calls, not the whole run's. (One process:
    # under --processes, a worker's last report can miss Locust's master, which counts it neither in its figures nor
    # in ours, while Milvus served those calls)
    client = sum(m["successes"] for (t, n), m in rows.items() if n == "search" and t.startswith("pymilvus"))
    server = res["server"]["operations"]["Search"]["requests"]["success"]
    assert abs(server - client) <= max(8, 0.05 * client), (server, client)


def test_loadgen_run_takes_locusts_reset_stats(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-u", "6", "-r", "3", "-t", "5s", "--reset-stats", "--processes", "2", *SMALL,
        "--collection", "lg_reset_stats", "--out", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    assert res["run"]["warmup"]["by"] == "reset-stats"
    for m in res["requests"]:
        assert m["successes"] + m["failures"] == m["requests"], m
    assert res["totals"]["requests"] == locust_total(tmp_path)
    assert "--reset-stats, at the end of spawning" in proc.stdout
