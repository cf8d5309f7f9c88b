"""Process hygiene of `loadgen run` with its own embedded Milvus, the web UI form, and the milvus-lite engine."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from pymilvus import MilvusClient

from loadgen.milvus.server import ServerInfo, _group_members, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen[str], int, list[str]]:
    """`loadgen run` with an embedded Milvus, until its users are running; returns (process, milvus pid, output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "run", "-t", "2m", "-u", "4", "--rows", "200", "--dim", "8",
         "--out", str(tmp_path / "out")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    data_dir = None
    for line in proc.stdout:
        seen.append(line)
        if m := re.search(r"logs: (\S+)/logs", line):
            data_dir = Path(m.group(1))
        if "All users spawned" in line:
            break
    assert data_dir is not None, "".join(seen)
    pid = json.loads((data_dir / "loadgen-server.json").read_text())["pid"]
    return proc, pid, seen


def test_killed_loadgen_takes_milvus_and_locust_with_it(tmp_path: Path) -> None:
    proc, milvus_pid, _ = _start_run(tmp_path)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False).stdout
    locusts = [int(p) for p in children.split()]
    assert _group_members(milvus_pid) and locusts
    proc.kill()  # a crash: no handler, no cleanup code runs
    proc.wait()
    assert _wait(lambda: not _group_members(milvus_pid), 15), "embedded Milvus outlived a killed loadgen"
    assert _wait(lambda: not any(map(_alive, locusts)), 30), "Locust outlived a killed loadgen"


def test_ctrl_c_stops_cleanly_with_partial_results(tmp_path: Path) -> None:
    proc, milvus_pid, _ = _start_run(tmp_path)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), out[-2000:]
    assert "TOTAL" in out  # the summary of what ran before the interrupt
    assert json.loads((tmp_path / "out" / "results.json").read_text())["totals"]["requests"] > 0
    assert not _group_members(milvus_pid)


def test_web_ui_lists_options_and_masks_the_token(milvus: ServerInfo) -> None:
    (port,) = free_ports(1)
    env = {**os.environ, "LOADGEN_MILVUS_TOKEN": "tok-s3cr3t-value"}
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "locust"), "-f", "locustfiles/pymilvus_users.py", "--host", milvus.uri,
         "--web-host", "127.0.0.1", "--web-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        page = ""

        def fetch() -> bool:
            nonlocal page
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            except OSError:
                return False
            return True

        assert _wait(fetch, 30), "web UI did not answer"
        for option in ("collection", "consistency_level", "weights", "index_type", "milvus_token"):
            assert option in page, option
        assert "tok-s3cr3t-value" not in page
    finally:
        ui.terminate()
        ui.wait(timeout=20)


def test_milvus_lite_engine_starts_and_stops(tmp_path: Path) -> None:
    started = run_cli("server", "start", "--engine", "lite", "--data-dir", str(tmp_path / "lite"), timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        c = MilvusClient(uri=started.stdout.strip(), timeout=10, alias="lite-check")
        c.create_collection("lite_ok", dimension=4)
        assert "lite_ok" in c.list_collections()
        c.close()
    finally:
        pid = json.loads(run_cli("server", "status", "--data-dir", str(tmp_path / "lite")).stdout)["pid"]
        assert run_cli("server", "stop", "--data-dir", str(tmp_path / "lite")).returncode == 0
    assert not _group_members(pid)
