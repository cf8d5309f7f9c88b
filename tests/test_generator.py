"""The generator watches itself (issue 16): a process pinned at full CPU by a busy task is reported saturated, an
idle one is not; workers' figures are merged on the master. No Milvus is involved: the host is never called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, master_port

from loadgen.stats.generator import CPU_SATURATED, LATE_SHARE_SATURATED, MIN_JUDGED_S, Lag, NodeLoad, section

pytestmark = pytest.mark.slow
LOCUSTFILE = ROOT / "tests" / "scripts" / "generator_load.py"


def run_locust(user: str, out: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2", "-r", "2", "-t", "6s",
            "--host", "http://127.0.0.1:9", "--only-summary", "--generator-file", str(out), *extra, user,
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env={**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_a_busy_generator_is_reported_saturated(tmp_path: Path) -> None:
    result = run_locust("BusyUser", tmp_path / "generator.json")
    assert result["saturated"] is True
    (node,) = result["nodes"].values()
    # the busy task holds the hub: the probe wakes late by a large share of the spin (and CPU runs near a core)
    assert node["hub_lag_ms"]["late_share"] >= LATE_SHARE_SATURATED and node["hub_lag_ms"]["samples"] > 0
    assert node["why"] and "generator saturated (local runner" in result["line"]
    assert "measure the generator, not Milvus" in result["line"]


def test_an_idle_generator_is_not_and_workers_are_merged(tmp_path: Path) -> None:
    result = run_locust("IdleUser", tmp_path / "generator.json", "--processes", "2", *master_port())
    assert result["saturated"] is False and result["line"] == ""
    assert len(result["nodes"]) == 2  # one entry per worker, merged on the master
    for node in result["nodes"].values():
        assert node["cpu_share"] < CPU_SATURATED
        assert node["hub_lag_ms"]["samples"] > 0 and node["loop_lag_ms"]["samples"] > 0  # both loops probed
        assert node["hub_lag_ms"]["late_share"] < LATE_SHARE_SATURATED
        assert node["loop_lag_ms"]["late_share"] < LATE_SHARE_SATURATED


def test_saturation_rule_on_synthetic_loads() -> None:
    def node(cpu_s: float, hub_lags: list[float], loop_lags: tuple[float, ...] = (), wall_s: float = 10.0) -> dict:
        hub, loop = Lag(), Lag()
        for ms in hub_lags:
            hub.add(ms)
        for ms in loop_lags:
            loop.add(ms)
        return NodeLoad(cpu_s, wall_s, hub=hub, loop=loop).summary()

    assert section({"w1": node(2.0, [1.0] * 10)})["saturated"] is False
    assert section({"w1": node(2.0, [1.0] * 9 + [400.0])})["saturated"] is False  # one pause is not saturation
    assert section({"w1": node(9.5, [1.0] * 10)})["saturated"] is True  # 0.95 of a core
    late = section({"w1": node(1.0, [1.0] * 4, (50.0,) * 3 + (1.0,)), "w2": node(1.0, [30.0] * 6 + [1.0] * 4)})
    assert late["saturated"] and "worker w1 and 1 more" in late["line"]
    assert "asyncio loop late in 75% of wake-ups (mean 38 ms)" in late["line"]
    # a span too short to tell the start of the run (spawning, connecting) from saturation is not judged
    short = node(0.99 * (MIN_JUDGED_S - 1), [30.0] * 2 + [1.0] * 2, wall_s=MIN_JUDGED_S - 1)
    assert short["judged"] is False and short["saturated"] is False
    assert section({"w1": short})["line"] == ""
    assert node(0.99 * MIN_JUDGED_S, [1.0] * 8, wall_s=MIN_JUDGED_S)["saturated"] is True
