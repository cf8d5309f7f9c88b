"""The open model and streams against the real embedded Milvus: rate accuracy, coordinated omission, server truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, server_counter, stop_thawed
from pymilvus import MilvusClient

from loadgen.config.settings import Settings
from loadgen.milvus import collection
from loadgen.milvus.server import EmbeddedMilvus, ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
SMALL = ["--rows", "1000", "--dim", "32"]


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_open_model_holds_its_rate_and_counts_every_send(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "--arrival-rate", "100", "-u", "4", "-t", "8s", *SMALL, "--weights", "search=1",
        "--collection", "lg_open_rate", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    ol = res["open_loop"]
    assert res["run"]["model"] == "open" and ol["target_rate"] == 100.0
    assert abs(ol["achieved_rate"] - 100.0) <= 2.0, ol  # within 2 %
    assert ol["dropped"] == 0 and ol["sent"] == ol["intended"]
    # every send was measured and reported: Locust's count is the schedule's
    assert sum(m["requests"] for m in res["requests"]) == ol["sent"]
    assert res["totals"]["failures"] == 0
    for m in res["requests"]:  # corrected latency (from the intended time) is never below the call's own time
        assert m["service"]["count"] == m["successes"]
        assert m["avg_ms"] >= m["service"]["mean_ms"] - 1e-6
        assert m["p99_ms"] >= m["service"]["p99_ms"] * 0.999  # HDR buckets: equal within its 0.1 % precision
    assert "open model: target 100.0 req/s" in proc.stdout


@pytest.fixture
def own_milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A Milvus of this test's own: it gets frozen."""
    server = EmbeddedMilvus(tmp_path_factory.mktemp("frozen-milvus"), die_with_parent=True)
    info = server.start()
    try:
        yield info
    finally:
        stop_thawed(server)


def _run_with_stall(info: ServerInfo, out: Path, model: list[str], stall_s: float) -> dict:
    """A 9 s search run; 3 s after the users are up the server is frozen (SIGSTOP) for ``stall_s``."""
    cmd = [
        sys.executable, "-m", "loadgen.cli", "run", "--host", info.uri, "-t", "9s", *SMALL, "--weights", "search=1",
        "--collection", "lg_stall", "--out", str(out), "--timeout", "10", *model,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "All users spawned" in line:
            break
    time.sleep(3)
    os.killpg(info.pid, signal.SIGSTOP)
    time.sleep(stall_s)
    os.killpg(info.pid, signal.SIGCONT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + rest[-3000:]
    return results_of(out)


def _search(res: dict, request_type: str) -> dict:
    return next(m for m in res["requests"] if m["type"] == request_type and m["name"] == "search")


def test_a_stall_shows_in_open_model_latency_but_hides_in_closed_loop(own_milvus: ServerInfo, tmp_path: Path) -> None:
    closed = _run_with_stall(own_milvus, tmp_path / "closed", ["-u", "4"], stall_s=1.5)
    # room for every send of the run in flight (25/s a user for 9 s): however slowly a loaded machine drains the
    # stall's backlog, no send is dropped, so a shortfall below could only be the schedule's
    opened = _run_with_stall(own_milvus, tmp_path / "open", ["-u", "4", "--arrival-rate", "100", "--max-in-flight",
                                                             "1000"], stall_s=1.5)  # fmt: skip
    # closed loop: 4 users wait out the stall with one request each, then carry on; the stall is a few samples
    for layer in ("pymilvus", "pymilvus-async"):
        c, o = _search(closed, layer), _search(opened, layer)
        assert c["failures"] == 0 and o["failures"] == 0
        assert c["max_ms"] >= 1000  # the closed users did sit through the stall...
        assert c["p90_ms"] < 150, c  # ...but it barely moves their percentiles
        # open model: every request scheduled during the 1.5 s stall waited for it, measured from its intended time
        assert o["p90_ms"] > 300 and o["p90_ms"] > 5 * c["p90_ms"], (o, c)
    assert opened["open_loop"]["sent"] == opened["open_loop"]["intended"]  # the schedule kept sending throughout


def _proxy_search_latency(info: ServerInfo) -> tuple[float, int]:
    """Sum (ms) and count of the proxy's search latency histogram."""
    text = urllib.request.urlopen(info.metrics_url, timeout=5).read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("milvus_proxy_sq_latency_") and 'query_type="search"' in line:
            found[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    # a server that has not searched yet exports no such series (this test alone, on a fresh server)
    return found.get("milvus_proxy_sq_latency_sum", 0.0), int(found.get("milvus_proxy_sq_latency_count", 0))


def test_our_counts_equal_the_servers_and_our_latency_is_not_below_its(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    """Search in the open model with inserts and deletes streamed at fixed rates: what we counted as a success is
    what the server's proxy counted, call for call; and no call took us less time than the server spent on it."""
    name = "lg_truth"
    collection.prepare(Settings(uri=milvus.uri, collection=name, dim=32, rows=1000), progress=False)  # fill first
    before = {f: server_counter(milvus, f) for f in ("Search", "Insert", "Delete")}
    lat_sum, lat_count = _proxy_search_latency(milvus)
    proc = run_cli(
        "run", "--host", milvus.uri, "--arrival-rate", "80", "-u", "4", "-t", "6s", *SMALL, "--weights", "search=1",
        "--stream-rates", "insert=10,delete=4", "--collection", name, "--out", str(tmp_path), "--drop-reused",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    ours = {f: sum(m["requests"] - m["failures"] for m in res["requests"] if m["name"] == f.lower()) for f in before}
    after = {f: server_counter(milvus, f) for f in before}
    assert all(ours[f] > 0 for f in before), ours
    assert {f: after[f] - before[f] for f in before} == ours
    lat_sum2, lat_count2 = _proxy_search_latency(milvus)
    assert lat_count2 - lat_count == ours["Search"]
    server_mean = (lat_sum2 - lat_sum) / (lat_count2 - lat_count)  # the proxy's own time per search
    for m in res["requests"]:
        if m["name"] == "search":
            assert m["service"]["mean_ms"] >= server_mean, (m, server_mean)
            assert m["avg_ms"] >= m["service"]["mean_ms"]
    streams = {k: v for k, v in res["open_loop"]["by_type"].items() if k.endswith("[stream]")}
    assert sum(v["sent"] for v in streams.values()) == ours["Insert"] + ours["Delete"]
    assert not client.has_collection(name)  # loadgen's, made before this run: dropped at the end as asked


def test_open_model_rate_is_split_across_worker_processes(milvus: ServerInfo, tmp_path: Path) -> None:
    """Workers see only their own users: the master tells them the total, so 2 processes share one rate."""
    proc = run_cli(
        "run", "--host", milvus.uri, "--processes", "2", "--arrival-rate", "60", "-u", "4", "-t", "6s", *SMALL,
        "--weights", "search=1", "--stream-rates", "insert=6", "--collection", "lg_open_procs", "--out", str(tmp_path),
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    ol = res["open_loop"]
    assert ol["target_rate"] == 60.0 and abs(ol["achieved_rate"] - 60.0) <= 6.0, ol  # not 30, not 120
    streams = sum(v["sent"] for k, v in ol["by_type"].items() if k.endswith("[stream]"))
    assert ol["sent"] + streams == res["totals"]["requests"]  # every worker's counts reached the master
