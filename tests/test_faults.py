"""Faults during a run, each against an embedded Milvus of its own (killed, restarted, frozen), and lost Locust
processes (a worker, the master). What must hold: failures are recorded under clear kinds, no user hangs (every call
is bounded by --timeout), the run ends on time, successes resume after a restart, and nothing is left running."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, stop_thawed
from pymilvus import MilvusClient

from loadgen.milvus.server import EmbeddedMilvus, ServerInfo, _group_members, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
SMALL = ["--rows", "300", "--dim", "8", "--timeout", "2", "--weights", "search=4,insert=1"]
# Milvus keeps a dead node's session for common.session.ttl (30 s by default) before it reloads collections on a
# restarted one: searches fail with "collection not loaded" for that long. 5 s keeps the test short.
FAST_RECOVERY = {"common.session.ttl": 5}
# A frozen server's own etcd leases expire by the wall clock: thawed after a freeze longer than the session TTL, the
# server finds its session gone and reports "service not ready: Abnormal" for good (seen once in CI, where the freeze
# ran ~25 s against the 5 s above). The freeze test keeps its session through the longest freeze it allows (32 s).
SURVIVES_FREEZE = {"common.session.ttl": 120}


def _own_server(tmp_path: Path, config: dict[str, int]) -> Iterator[EmbeddedMilvus]:
    server = EmbeddedMilvus(tmp_path / "milvus", die_with_parent=True, config=config)
    server.start()
    try:
        yield server
    finally:
        stop_thawed(server)


@pytest.fixture
def own_milvus(tmp_path: Path) -> Iterator[EmbeddedMilvus]:
    """A server this test may kill; stopped whatever happens."""
    yield from _own_server(tmp_path, FAST_RECOVERY)


@pytest.fixture
def freezable_milvus(tmp_path: Path) -> Iterator[EmbeddedMilvus]:
    """A server this test may freeze (SIGSTOP); thawed and stopped whatever happens."""
    yield from _own_server(tmp_path, SURVIVES_FREEZE)


def _launch(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _read_until(proc: subprocess.Popen[str], marker: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return
    raise AssertionError("".join(seen[-50:]))


def _finish(proc: subprocess.Popen[str], seen: list[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"did not end within {timeout} s") from None
    return "".join(seen) + out


def _successes(history: Path, name: str) -> list[tuple[int, int]]:
    """(unix second, successful requests so far) of ``name`` over both flavours, from Locust's per-second CSV."""
    per_second: dict[int, dict[str, int]] = {}
    with history.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == name:
                ok = int(row["Total Request Count"]) - int(row["Total Failure Count"])
                per_second.setdefault(int(row["Timestamp"]), {})[row["Type"]] = ok
    return sorted((t, sum(v.values())) for t, v in per_second.items())


def test_killed_milvus_failures_are_named_and_successes_resume_after_restart(
    own_milvus: EmbeddedMilvus, tmp_path: Path
) -> None:
    info = own_milvus.info
    assert info is not None
    out = tmp_path / "out"
    proc = _launch("-m", "loadgen.cli", "run", "--host", info.uri, "-u", "4", "-t", "35s", *SMALL,
                   "--collection", "lg_fault_kill", "--out", str(out))  # fmt: skip
    seen: list[str] = []
    _read_until(proc, "All users spawned", seen)
    started = time.monotonic()
    time.sleep(4)
    os.killpg(info.pid, signal.SIGKILL)  # a crash: no shutdown at all
    killed_at = time.time()
    own_milvus.stop()
    time.sleep(3)
    own_milvus.start(same_ports=True)  # same ports, same data dir: the clients' channels reconnect by themselves
    up_at = time.time()
    text = _finish(proc, seen, timeout=120)
    assert time.monotonic() - started < 35 + 30, "the run overran: some user hung"
    assert proc.returncode == 1, text[-3000:]  # failures happened; loadgen itself did not fail
    assert "Traceback" not in text, text[-3000:]
    res = json.loads((out / "results.json").read_text())
    kinds = {f["kind"] for f in res["failures"]}
    assert kinds & {"unavailable", "timeout"}, res["failures"]  # the outage, under a clear kind
    assert kinds <= {"unavailable", "timeout", "server"}, res["failures"]  # nothing raised by loadgen itself
    assert all("\n" not in f["error"] for f in res["failures"])
    history = _successes(out / "stats_stats_history.csv", "search")
    # rows are whole seconds: count from 2 s after the kill (the calls answered just before it are in by then)
    after_kill = next(ok for t, ok in history if t >= killed_at + 2)
    at_up = max(ok for t, ok in history if t <= up_at)
    assert at_up - after_kill <= 8, history  # nothing succeeded while the server was down
    resumed = min(t for t, ok in history if ok > at_up + 20)
    assert resumed - up_at < 15, f"searches resumed {resumed - up_at:.0f} s after the restart"
    assert history[-1][1] - at_up > 100, history  # and went on succeeding until the end
    assert "dropped collection lg_fault_kill" in text, text[-2500:]  # cleanup still ran on the restarted server
    c = MilvusClient(uri=info.uri, timeout=10, alias="fault-kill-check")
    assert not c.has_collection("lg_fault_kill")
    c.close()


def test_frozen_milvus_calls_time_out_and_the_run_ends_on_time(
    freezable_milvus: EmbeddedMilvus, tmp_path: Path
) -> None:
    info = freezable_milvus.info
    assert info is not None
    out = tmp_path / "out"
    proc = _launch("-m", "loadgen.cli", "run", "--host", info.uri, "-u", "4", "-t", "12s", *SMALL,
                   "--collection", "lg_fault_freeze", "--out", str(out))  # fmt: skip
    seen: list[str] = []
    _read_until(proc, "All users spawned", seen)
    started = time.monotonic()
    time.sleep(3)
    os.killpg(info.pid, signal.SIGSTOP)
    try:
        text = _finish(proc, seen, timeout=90)
        elapsed = time.monotonic() - started
    finally:
        os.killpg(info.pid, signal.SIGCONT)
    # 12 s of run time, then the calls in flight (2 s timeout), the stop and a cleanup that gives up after 2 s
    assert elapsed < 12 + 20, f"the run took {elapsed:.1f} s"
    assert proc.returncode == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    res = json.loads((out / "results.json").read_text())
    timeouts = sum(f["occurrences"] for f in res["failures"] if f["kind"] == "timeout")
    assert timeouts >= 4, res["failures"]  # every user's call to the frozen server timed out, and was reported
    assert "could not drop collection lg_fault_freeze" in text  # said in one line, not a traceback
    deadline = time.monotonic() + 60  # thawed, Milvus re-finds its root coordinator after a moment
    while True:
        try:  # connecting is a call too: it may be refused while the server is not ready yet
            c = MilvusClient(uri=info.uri, timeout=10, alias="fault-freeze-check")
            found = c.has_collection("lg_fault_freeze")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert found  # the server still has what loadgen could not drop
    c.drop_collection("lg_fault_freeze")
    c.close()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def test_killed_worker_is_reported_and_the_master_goes_on(milvus: ServerInfo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _launch("-m", "loadgen.cli", "run", "--host", milvus.uri, "--processes", "2", "-u", "4", "-t", "20s",
                   *SMALL, "--collection", "lg_fault_worker", "--out", str(out))  # fmt: skip
    seen: list[str] = []
    _read_until(proc, "Sending spawn jobs", seen)  # the master's "All users spawned" may not come (late reports)
    (master,) = _children(proc.pid)
    workers = _children(master)
    assert len(workers) == 2, workers
    time.sleep(3)
    os.kill(workers[0], signal.SIGKILL)
    killed_at = time.time()
    text = _finish(proc, seen, timeout=120)
    assert "Traceback" not in text, text[-3000:]
    assert re.search(r"worker \S+ went missing \(no heartbeat\); going on with 1 worker", text), text[-3000:]
    assert "1 of 2 worker(s) went missing during the run" in text
    res = json.loads((out / "results.json").read_text())
    assert len(res["workers"]["seen"]) == 2 and len(res["workers"]["missing"]) == 1, res["workers"]
    history = _successes(out / "stats_stats_history.csv", "search")
    after = [ok for t, ok in history if t >= killed_at + 5]
    assert after and after[-1] - after[0] > 20, history  # the other worker kept working
    assert not any(_group_members(w) for w in workers)


def test_killed_master_lets_workers_exit_cleanly(milvus: ServerInfo, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    common = ["-m", "locust", "-f", "locustfiles/pymilvus_users.py", "--master-timeout", "4"]
    master = _launch(*common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--headless", "-u", "4", "-t", "60s", "--expect-workers", "2", "--host", milvus.uri,
                     *SMALL, "--collection", "lg_fault_master")  # fmt: skip
    workers = [_launch(*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)) for _ in range(2)]
    try:
        seen: list[str] = []
        _read_until(master, "Sending spawn jobs", seen)
        time.sleep(3)
        master.kill()
        master.wait()
        killed = time.monotonic()
        outputs = [_finish(w, [], timeout=60) for w in workers]
        took = time.monotonic() - killed
        assert took < 4 + 15, f"workers took {took:.0f} s to give up on a dead master"
        for w, text in zip(workers, outputs, strict=True):
            assert "Didn't get heartbeat from master in over 4s" in text, text[-2000:]
            assert "Traceback" not in text, text[-2000:]
            assert w.returncode in (0, 1), text[-2000:]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
        c = MilvusClient(uri=milvus.uri, timeout=10, alias="fault-master-check")
        if c.has_collection("lg_fault_master"):  # loadgen's own: the killed master could not clean it up
            c.drop_collection("lg_fault_master")
        c.close()
