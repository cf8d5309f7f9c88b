"""Custom users under real Locust processes with no server (fast tier): sync and async tasks and flows, crashes,
local workers and the open model, results.json's flows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, master_port

LOCUSTFILE = "tests/locustfiles/custom_offline.py"


def run(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}  # a plain locust: re-exec
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "locust"), "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1",
         "--headless", "-u", "4", "-r", "4", "-t", "3s", "--results-dir", str(out), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert (out / "results.json").exists(), proc.stderr[-3000:]
    return proc, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("extra", [[], ["--processes", "2"], ["--arrival-rate", "60"]], ids=["local", "2w", "open"])
def test_sync_and_async_tasks_flows_and_crashes(tmp_path: Path, extra: list[str]) -> None:
    proc, res = run(tmp_path, *extra, *(master_port() if "--processes" in extra else []))
    assert proc.returncode == 1, proc.stderr[-3000:]  # the crashing task's failures
    rows = {(m["type"], m["name"]): m for m in res["requests"]}
    for flow in ("sync", "async"):  # a sync and an async task of one user both report
        row = rows[("flow", flow)]
        # > 0, not more: with --processes 2 on a busy machine the workers' users may start late in the 3 s
        assert row["failures"] == 0 and row["successes"] > 0
        steps = res["flows"][flow]
        assert steps["total"]["count"] == row["successes"]
        # the flow's own time: in the open model the row's latency also counts the wait from the intended send time
        own_ms = row["service"]["mean_ms"] if "service" in row else row["avg_ms"]
        assert steps["total"]["mean_ms"] == pytest.approx(own_ms, abs=0.002)
        assert [s["step"] for s in steps["steps"]] == ["first", "second", "(rest)"]
        assert sum(s["mean_ms"] for s in steps["steps"]) == pytest.approx(steps["total"]["mean_ms"], abs=0.005)
    crash = rows[("task", "crash")]
    assert crash["failures"] == crash["requests"] >= 2  # a crash is a failure, not a dead user
    assert "boom in user code" in next(f["error"] for f in res["failures"] if f["name"] == "crash")
    if "--arrival-rate" in extra:
        sends = res["open_loop"]["by_type"]["Offline"]
        assert sends["sent"] >= 100 and sends["dropped"] == 0
        total = sum(rows[k]["requests"] for k in (("flow", "sync"), ("flow", "async"), ("task", "crash")))
        assert sends["sent"] - 4 <= total <= sends["sent"]  # every send ran one task
