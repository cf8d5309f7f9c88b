"""Cold against warm: the figures (``loadgen.milvus.coldwarm``), the report's section, and ``loadgen coldwarm`` with
a real release and load of the collection and a real restart of the embedded Milvus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_cli

from loadgen.milvus.coldwarm import FORMAT, event_figures, lines, settle_s
from loadgen.milvus.server import ServerInfo
from loadgen.report import coldwarm as section


def _series(windows: list[list[float]], first_at: float = 2.0) -> list[tuple[float, float | None]]:
    """Samples spread over one-second windows from ``first_at``, after two failures."""
    out: list[tuple[float, float | None]] = [(0.5, None), (1.0, None)]
    for i, window in enumerate(windows):
        out += [(first_at + i + j / len(window), ms) for j, ms in enumerate(window)]
    return out


def test_settling_is_where_the_rest_of_the_searches_holds_the_warm_p99() -> None:
    fast, slow = [2.0] * 50, [2.0] * 40 + [40.0] * 10
    assert settle_s(_series([fast, fast, fast]), warm_p99_ms=2.0) == 0.0
    assert settle_s(_series([slow, slow, fast, fast, fast]), warm_p99_ms=2.0) == 2.0
    assert settle_s(_series([fast, fast, slow]), warm_p99_ms=2.0) is None  # it did not hold to the end
    assert settle_s([(1.0, None)], warm_p99_ms=2.0) is None
    e = event_figures("restart", _series([slow, fast]), 2.0, server_up_s=1.5)
    assert (e["first_success_s"], e["failures"], e["searches"], e["settle_s"]) == (2.0, 2, 100, 1.0)
    assert e["first_ms"] == 2.0 and e["first_window_p99_ms"] == 40.0
    said = lines({"warm": {"p50_ms": 1.0, "p99_ms": 2.0, "searches": 10}, "events": [e]})
    assert said[1].startswith("restart: server up after 1.5 s, first successful search 2.00 s after the restart")
    assert "p99 settled after 1 s" in said[1]


def _doc(tmp: Path) -> Path:
    e = event_figures("release-load", _series([[3.0] * 10, [1.0] * 10]), 1.0, release_s=0.1, load_s=1.2)
    doc: dict[str, Any] = {"format": FORMAT, "warm": {"p50_ms": 1.0, "p99_ms": 1.0, "searches": 20}, "events": [e],
                           "settled_within": 1.5, "restart": "not measured: only the embedded Milvus"}  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "coldwarm.json").write_text(json.dumps(doc))
    return tmp


def test_the_report_shows_the_section_beside_a_run(tmp_path: Path) -> None:
    cold = _doc(tmp_path / "cold")
    assert section.alone(cold) and section.read(cold / "coldwarm.json") is not None
    _, rows = section.table([section.read(cold)])  # type: ignore[list-item]
    assert rows == [("release-load", "2.00", "2", "3.0", "3.0", "1", "1.00")]
    alone = run_cli("report", str(cold), "--out", str(tmp_path / "r0"))
    assert alone.returncode == 2 and "coldwarm.json is shown beside a run's results" in alone.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "coldwarm.json").write_text("{}")
    bad = run_cli("report", str(tmp_path / "bad"), "--out", str(tmp_path / "r1"))
    assert bad.returncode == 2 and "not a loadgen coldwarm document" in bad.stderr
    run = tmp_path / "run"  # a run's folder (the fake store, plain locust), with the coldwarm.json written into it
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", "tests/locustfiles/fake_users.py", "--host", "http://127.0.0.1:1",
         "--headless", "-u", "2", "-t", "2s", "--results-dir", str(run), "--only-summary"],
        capture_output=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    _doc(run)
    proc = run_cli("report", str(run), "--out", str(tmp_path / "r2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "## Cold and warm" in md and "| release-load | 2.00 | 2 | 3.0 | 3.0 | 1 | 1.00 |" in md
    assert "release-load: load took 1.20 s, first successful search 2.00 s after the release" in md


@pytest.mark.milvus
@pytest.mark.slow
def test_coldwarm_releases_loads_and_restarts_a_real_milvus(tmp_path: Path) -> None:
    proc = run_cli(
        "coldwarm", "--rows", "1000", "--dim", "16", "--index-type", "FLAT", "--seconds", "2",
        "--collection", "lg_coldwarm", "--out", str(tmp_path), timeout=420,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "coldwarm.json").read_text())
    assert doc["warm"]["searches"] > 0 and doc["restart"] == "embedded server"
    load, restart = doc["events"]
    assert load["event"] == "release-load" and restart["event"] == "restart"
    # the load comes before the first search that answers, and that one before the series ends
    assert 0 < load["release_s"] <= load["load_s"] <= load["first_success_s"], load
    assert 0 < restart["server_up_s"] <= restart["first_success_s"], restart
    for e in (load, restart):
        assert e["searches"] > 0 and e["first_ms"] > 0
        assert e["settle_s"] is None or 0 <= e["settle_s"] <= 2.0 + 1.0
        assert e["samples"][-1][0] >= e["first_success_s"] + 2.0  # measured for --seconds after the first success
    assert "release-load: load took" in proc.stdout and "restart: server up after" in proc.stdout


@pytest.mark.milvus
def test_your_restart_and_scale_commands_are_measured_on_your_milvus(milvus: ServerInfo, tmp_path: Path) -> None:
    # a stand-in for `kubectl rollout restart`: the server frozen for a second, then going on; and for a scale-out
    # (`kubectl patch milvus ... replicas`): a command that notes when it ran
    stamp = tmp_path / "scaled"
    restart = f"kill -STOP -{milvus.pid}; sleep 1; kill -CONT -{milvus.pid}"
    proc = run_cli(
        "coldwarm", "--host", milvus.uri, "--rows", "300", "--dim", "8", "--index-type", "FLAT", "--seconds", "1",
        "--collection", "lg_coldwarm_cmd", "--out", str(tmp_path / "out"), "--restart-command", restart,
        "--scale-command", f"date +%s > {stamp}", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "coldwarm.json").read_text())
    assert doc["restart"] == "--restart-command" and stamp.exists()
    assert [e["event"] for e in doc["events"]] == ["release-load", "scale-out", "restart"]
    scale, restart_event = doc["events"][1], doc["events"][2]
    assert 0 <= scale["command_s"] <= scale["first_success_s"] and scale["searches"] > 0
    assert 1.0 <= restart_event["server_up_s"] <= restart_event["first_success_s"]  # the command's second frozen
    assert "scale-out: the command took" in proc.stdout and "restart: server up after" in proc.stdout
    failing = run_cli("coldwarm", "--host", milvus.uri, "--rows", "300", "--dim", "8", "--index-type", "FLAT",
                      "--seconds", "1", "--collection", "lg_coldwarm_cmd2", "--out", str(tmp_path / "out2"),
                      "--scale-command", "exit 3", timeout=300)  # fmt: skip
    assert failing.returncode == 2 and "loadgen: error: --scale-command failed (exit code 3)" in failing.stderr
    no_host = run_cli("coldwarm", "--restart-command", "true", "--out", str(tmp_path / "out3"))
    assert no_host.returncode == 2 and "--restart-command restarts your Milvus: give its --host" in no_host.stderr
