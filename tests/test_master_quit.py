"""A headless master with workers keeps every call its workers made: Locust's own master stops listening 0.5 s after
it tells the workers to quit, and a worker slower to stop than that sent its last report to no one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, master_port

pytestmark = pytest.mark.slow


def test_the_workers_last_reports_reach_the_results(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "scripts" / "slow_stop.py"), "--headless",
         "-u", "4", "-r", "4", "-t", "3s", "--processes", "2", *master_port(), "--host", "http://127.0.0.1:9",
         "--only-summary", "--stop-timeout", "5", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env={**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1", "SLOW_STOP_DIR": str(counts)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    fired = [json.loads(f.read_text())["fired"] for f in counts.glob("*.json")]
    assert len(fired) == 2 and all(n > 0 for n in fired), fired  # both workers ran users
    [row] = json.loads((tmp_path / "results.json").read_text())["requests"]
    assert row["requests"] == sum(fired), (row["requests"], fired)  # not one worker's last seconds short
