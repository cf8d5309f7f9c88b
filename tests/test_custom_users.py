"""Your own locustfiles against the real embedded Milvus: the examples, server-side counts, workers, the open model,
plain locust, failures and deadlines, and a collection of yours that stays untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, server_counter, snapshot
from pymilvus import DataType, MilvusClient

from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
SMALL = ["--rows", "300", "--dim", "32"]
EXAMPLES = {
    "search_then_fetch": [("pymilvus", "search"), ("pymilvus", "get"), ("pymilvus-async", "search"),
                          ("pymilvus-async", "get"), ("flow", "search_then_fetch")],
    "langchain_rag": [("langchain-async", "asimilarity_search"), ("langchain", "similarity_search"), ("flow", "rag")],
    "llamaindex_query": [("llamaindex-async", "aquery"), ("flow", "query_engine"), ("flow", "rag")],
}  # fmt: skip


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _by_key(res: dict) -> dict[tuple[str, str], dict]:
    return {(m["type"], m["name"]): m for m in res["requests"]}


def _check_flows_add_up(res: dict) -> None:
    """Each flow's steps add up to its row: per flow, to the microsecond the histograms keep."""
    rows = _by_key(res)
    for name, flow in res["flows"].items():
        row = rows[("flow", name)]
        total = flow["total"]
        assert total["count"] == row["successes"] == row["requests"] - row["failures"]
        own_ms = row["service"]["mean_ms"] if "service" in row else row["avg_ms"]  # open model: without the wait
        assert total["mean_ms"] == pytest.approx(own_ms, abs=0.002)  # the same flows, to the microsecond
        if flow["steps"]:
            assert sum(s["mean_ms"] for s in flow["steps"]) == pytest.approx(total["mean_ms"], abs=0.005)
            assert sum(s["share"] for s in flow["steps"]) == pytest.approx(1.0, abs=0.001)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_runs_headless_with_zero_failures(milvus: ServerInfo, tmp_path: Path, example: str) -> None:
    searches = server_counter(milvus, "Search")
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", f"examples/{example}.py", "-u", "3", "-t", "5s", *SMALL,
        "--collection", f"lg_ex_{example}", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(tmp_path)
    rows = _by_key(res)
    assert res["totals"]["failures"] == 0, res["failures"]
    for key in EXAMPLES[example]:
        assert rows[key]["requests"] > 0, (key, sorted(rows))
    _check_flows_add_up(res)
    assert f"flow {EXAMPLES[example][-1][1]}: mean" in proc.stdout
    if example == "search_then_fetch":  # every timed search is one the server served, and no other
        ours = sum(m["requests"] for m in res["requests"] if m["name"] == "search")
        assert server_counter(milvus, "Search") - searches == ours


def test_custom_user_as_master_and_two_workers(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", "examples/search_then_fetch.py", "--processes", "2", "-u", "4", "-t", "6s",
        *SMALL, "--collection", "lg_ex_procs", "--out", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_worker = json.loads(proc.stderr.split("requests per worker: ", 1)[1].splitlines()[0])
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values())
    res = _results(tmp_path)
    flows = sum(m["requests"] for m in res["requests"] if m["type"] == "flow")
    # the workers counted every row; the totals count store calls (a flow's calls are rows of their own)
    assert res["totals"]["failures"] == 0 and res["totals"]["requests"] == sum(per_worker.values()) - flows > 0
    assert _by_key(res)[("flow", "search_then_fetch")]["requests"] > 0
    _check_flows_add_up(res)  # the steps were merged from both workers too


def test_open_model_sends_the_users_tasks(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", "examples/search_then_fetch.py", "--arrival-rate", "40", "-u", "4",
        "-t", "5s", *SMALL, "--collection", "lg_ex_open", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(tmp_path)
    assert res["totals"]["failures"] == 0
    sends = res["open_loop"]["by_type"]["SearchThenFetch"]
    assert sends["sent"] >= 100 and sends["dropped"] == 0  # ~40/s for ~5 s
    rows = _by_key(res)
    # every send ran one task: a sync one (search + get) or the async flow
    sync_tasks, flows = rows[("pymilvus", "search")]["requests"], rows[("flow", "search_then_fetch")]["requests"]
    # (a send still in flight when the users stopped may have been cut off: at most one per user)
    assert sends["sent"] - 4 <= sync_tasks + flows <= sends["sent"]


def test_plain_locust_command_runs_a_custom_locustfile(milvus: ServerInfo) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "locust"), "-f", "examples/search_then_fetch.py", "--headless", "-u", "2",
         "-t", "4s", "--host", milvus.uri, *SMALL, "--collection", "lg_ex_plain", "--only-summary", "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = {(e["method"], e["name"]): e for e in json.loads(proc.stdout)}
    assert entries[("flow", "search_then_fetch")]["num_requests"] > 0
    assert entries[("pymilvus", "get")]["num_requests"] > 0
    assert sum(e["num_failures"] for e in entries.values()) == 0


FAILING = """
import asyncio
from locust import task
from loadgen import VectorStoreUser

class Failing(VectorStoreUser):
    # weighted so that the crash comes many times between the slow task's 3 s waits: with equal weights a user
    # could draw the slow task three times running and crash at most once in the 8 s (seen once under load)
    @task(4)
    async def crash(self):
        raise RuntimeError("boom in user code")

    @task
    async def slow(self):
        async with self.flow("slow"):
            await asyncio.sleep(60)

    @task(4)
    async def search(self):
        await self.amilvus.search(self.collection, data=[self.query_vector()], limit=5)
"""


def test_crashes_and_slow_coroutines_are_failures_not_dead_users(milvus: ServerInfo, tmp_path: Path) -> None:
    locustfile = tmp_path / "failing.py"
    locustfile.write_text(textwrap.dedent(FAILING))
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", str(locustfile), "-u", "2", "-t", "8s", "--timeout", "3", *SMALL,
        "--collection", "lg_ex_failing", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # Locust's exit code when requests failed
    res = _results(tmp_path / "out")
    rows = _by_key(res)
    assert rows[("task", "crash")]["failures"] == rows[("task", "crash")]["requests"] >= 2  # the user went on
    assert rows[("flow", "slow")]["failures"] >= 1 and rows[("flow", "slow")]["successes"] == 0
    assert rows[("pymilvus-async", "search")]["failures"] == 0 and rows[("pymilvus-async", "search")]["requests"] > 0
    errors = {(f["type"], f["name"]): f for f in res["failures"]}
    assert "boom in user code" in errors[("task", "crash")]["error"]
    assert "ran past --timeout 3 s" in errors[("flow", "slow")]["error"]
    assert errors[("flow", "slow")]["kind"] == "timeout"
    assert ("task", "slow") not in rows  # the flow reported the deadline: counted once


BYO = """
from locust import task
from loadgen import VectorStoreUser

class Mine(VectorStoreUser):
    existing_collection = "lg_byo_docs"

    @task(4)
    def search(self):
        self.milvus.search(self.collection, data=[self.query_vector()], filter=self.filter(), limit=5,
                           output_fields=["lang"])

    @task(4)
    async def asearch(self):
        await self.amilvus.search(self.collection, data=[self.query_vector()], limit=5)

    @task
    def write(self):
        self.milvus.insert(self.collection, [{"doc_id": 10**9, "emb": [0.5] * 8, "year": 1, "lang": "xx"}])
"""


def test_your_own_collection_is_searched_with_fitting_inputs_and_never_written(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    name = "lg_byo_docs"
    schema = MilvusClient.create_schema(auto_id=False, description="someone else's")
    schema.add_field("doc_id", DataType.INT64, is_primary=True)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("year", DataType.INT64)
    schema.add_field("lang", DataType.VARCHAR, max_length=8)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    try:
        rows = [{"doc_id": i, "emb": [float((i * 7 + j) % 11) for j in range(8)], "year": 2000 + i % 20,
                 "lang": ("en", "de", "fr")[i % 3]} for i in range(200)]  # fmt: skip
        client.insert(name, rows)
        client.flush(name)
        client.load_collection(name)
        before = snapshot(client)
        locustfile = tmp_path / "byo.py"
        locustfile.write_text(textwrap.dedent(BYO))
        proc = run_cli(
            "run", "--host", milvus.uri, "-f", str(locustfile), "-u", "2", "-t", "4s",
            "--out", str(tmp_path / "out"),
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr[-3000:]  # the refused writes are failed tasks
        res = _results(tmp_path / "out")
        by = _by_key(res)
        for key in (("pymilvus", "search"), ("pymilvus-async", "search")):
            assert by[key]["requests"] > 0 and by[key]["failures"] == 0, res["failures"]
            assert by[key]["response_length_total"] > 0  # filters that fit: the searches found rows
        assert ("pymilvus", "insert") not in by  # refused before anything was sent
        write = next(f for f in res["failures"] if f["name"] == "write")
        assert write["type"] == "task" and "read-only" in write["error"]
        assert snapshot(client) == before  # nothing created, dropped or written
    finally:
        client.drop_collection(name)


def test_web_ui_class_picker_runs_a_custom_user(milvus: ServerInfo, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "ui", "--host", milvus.uri, "--web-port", str(port),
         "-f", "examples/search_then_fetch.py", *SMALL, "--collection", "lg_ex_ui"],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - Ctrl-C as from a terminal
    )  # fmt: skip

    def stats() -> dict[tuple[str, str], int]:
        try:
            body = json.loads(urllib.request.urlopen(url + "/stats/requests", timeout=5).read())
        except OSError:
            return {}
        return {(s["method"], s["name"]): s["num_requests"] for s in body.get("stats", []) if s.get("method")}

    try:
        assert _wait(lambda: _up(url) or proc.poll() is not None, 120) and proc.poll() is None, log.read_text()
        form = b"user_count=2&spawn_rate=2&user_classes=SearchThenFetch"  # what the class picker sends
        assert json.loads(urllib.request.urlopen(url + "/swarm", data=form, timeout=60).read())["success"]
        assert _wait(lambda: stats().get(("flow", "search_then_fetch"), 0) > 0, 60), stats()
        assert stats().get(("pymilvus", "get"), 0) > 0
        body = json.loads(urllib.request.urlopen(url + "/stats/requests", timeout=5).read())
        assert body["fail_ratio"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/", timeout=5).read()
        return True
    except OSError:
        return False


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.5)  # polling an HTTP endpoint: there is no event to wait on across processes
    return cond()


def test_a_missing_collection_of_yours_is_one_line(milvus: ServerInfo, tmp_path: Path) -> None:
    locustfile = tmp_path / "missing.py"
    locustfile.write_text(textwrap.dedent(BYO).replace("lg_byo_docs", "lg_no_such_docs"))
    proc = run_cli("run", "--host", milvus.uri, "-f", str(locustfile), "-u", "1", "-t", "3s", "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "loadgen: error: collection 'lg_no_such_docs' does not exist" in proc.stderr


def test_dataset_searches_of_a_custom_user_are_scored(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", "examples/search_then_fetch.py", "-u", "2", "-t", "4s",
        "--dataset", "synthetic:clustered", "--rows", "1000", "--dim", "32", "--index-type", "FLAT",
        "--groundtruth-cache", str(tmp_path / "gt"), "--collection", "lg_ex_recall", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(tmp_path / "out")
    rows = _by_key(res)
    for flavour in ("pymilvus", "pymilvus-async"):
        scored = res["recall"][f"{flavour} search"]
        assert scored["count"] == rows[(flavour, "search")]["successes"] > 0  # every search of a dataset query
        assert scored["mean"] >= 0.99  # FLAT is exact
    assert not any(key.endswith(" get") for key in res["recall"])


@pytest.mark.parametrize(
    ("example", "scored"),
    [
        ("langchain_rag.py", {("langchain-async", "asimilarity_search"), ("langchain", "similarity_search")}),
        ("llamaindex_query.py", {("llamaindex-async", "aquery")}),
    ],
)
def test_dataset_searches_through_framework_handles_are_scored(
    milvus: ServerInfo, tmp_path: Path, example: str, scored: set[tuple[str, str]]
) -> None:
    """Issue 14: the examples search with ``self.query_text()``; with --dataset that is one of its queries, the
    layer's collection holds its rows, and the handle's searches (also those a retriever or query engine makes
    inside the library) are scored like the pymilvus layer's."""
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", f"examples/{example}", "-u", "2", "-t", "4s",
        "--dataset", "synthetic:clustered", "--rows", "1000", "--dim", "32", "--index-type", "FLAT",
        "--consistency-level", "Strong", "--groundtruth-cache", str(tmp_path / "gt"),
        "--collection", "lg_ex_fw_recall", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(tmp_path / "out")
    rows = _by_key(res)
    recall = {tuple(key.split(" ", 1)): entry for key, entry in res["recall"].items()}
    assert set(recall) == scored, sorted(recall)
    for key, entry in recall.items():
        assert entry["count"] == rows[key]["successes"] > 0, (key, entry)  # every search of a dataset query
        assert entry["mean"] >= 0.99, (key, entry)  # FLAT and Strong: exact
