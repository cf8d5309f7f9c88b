"""The generator's size for a target QPS (issue 17): worked examples with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from test_report_cli import results

from loadgen.report import sizing


def test_processes_and_pods_for_a_target() -> None:
    # 600 us per call: a process at 70% of one core does 0.7 / 0.0006 = 1166.7 calls/s; 10,000 QPS needs 9 of them
    g = sizing.generator(10_000, 600, pod_cpu=2.0, headroom=0.3)
    assert g["qps_per_process"] == pytest.approx(1166.67, rel=1e-4)
    assert g["processes"] == 9
    assert g["processes_per_pod"] == 2 and g["pods"] == 5
    assert g["cores_needed"] == pytest.approx(6.0)


def test_a_pod_under_one_core_gives_its_process_only_that_share() -> None:
    g = sizing.generator(1_000, 500, pod_cpu=0.5, headroom=0.0)  # a process gets half a core: 1,000 calls/s
    assert g["processes"] == 1 and g["pods"] == 1
    g = sizing.generator(1_001, 500, pod_cpu=0.5, headroom=0.0)
    assert g["processes"] == 2 and g["pods"] == 2


def test_a_cheaper_client_path_needs_fewer_processes() -> None:
    library = sizing.generator(20_000, 570, pod_cpu=1.0)
    fast = sizing.generator(20_000, 350, pod_cpu=1.0)
    assert fast["processes"] < library["processes"]


@pytest.mark.parametrize("args", [(0, 100), (100, 0), (100, -1)])
def test_bad_figures_are_refused(args: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        sizing.generator(*args)


def test_report_sizes_the_generator_next_to_milvus(tmp_path: Path) -> None:
    src = tmp_path / "run"
    src.mkdir()
    (src / "results.json").write_text(json.dumps(results(4, 400.0, 8.0)))
    out = tmp_path / "r"
    proc = run_cli("report", str(src), "--out", str(out), "--target-qps", "5000", "--generator-cpu-us", "600",
                   "--pod-cpu", "2", timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    g = json.loads((out / "report.json").read_text())["sizing"]["generator"]
    assert (g["processes"], g["pods"]) == (5, 3)  # 5000 x 600 us = 3 cores, at 70% of one core each: 4.3 -> 5
    assert "sizing load generator: 5 worker process(es) in 3 pod(s) of 2 CPU" in proc.stdout
    assert "Load generator: 5 worker process(es) in 3 pod(s)" in (out / "report.md").read_text()


def test_report_refuses_a_bad_generator_cpu_figure(tmp_path: Path) -> None:
    proc = run_cli("report", str(tmp_path), "--target-qps", "10", "--generator-cpu-us", "0", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "loadgen: error: --generator-cpu-us 0: out of range (above 0 to inf)"
