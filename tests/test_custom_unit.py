"""Your own locustfiles, without a server: lazy public names, timed handles, flows and their statistics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, run_script

from loadgen.clients.flow import REST, Flow
from loadgen.clients.timed import (
    PYMILVUS_WRITES,
    Handle,
    QueryVector,
    ReadOnlyCollectionError,
    Reporter,
    Scoring,
    instrument,
    length_of,
    was_reported,
)
from loadgen.milvus.existing import CollectionInfo, filter_for
from loadgen.stats.flows import TOTAL, FlowListener


class Rows:
    """A stand-in for Locust's events: what was fired."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.request = SimpleNamespace(fire=lambda **kw: self.rows.append(kw))


class FakeClient:
    """Shaped like MilvusClient where it matters: collection first, a timeout keyword, sync and async methods."""

    def __init__(self) -> None:
        self.timeouts: list[Any] = []

    def search(self, collection_name: str, data: list[Any], limit: int = 10, timeout: Any = None, **kw: Any) -> Any:
        self.timeouts.append(timeout)
        return [[{"id": i} for i in (1, 2, 9)[:limit]]]

    def insert(self, collection_name: str, data: list[Any], timeout: Any = None) -> dict[str, int]:
        return {"insert_count": len(data)}

    def outer(self, timeout: Any = None) -> Any:  # a method that calls another public one
        return self.search("c", [[0.0]], timeout=timeout)

    def broken(self, timeout: Any = None) -> None:
        raise ValueError("server said no")

    async def asearch(self, collection_name: str, data: list[Any], timeout: Any = None) -> Any:
        await asyncio.sleep(0)
        return [[{"id": 1}]]


def _timed(**kw: Any) -> tuple[FakeClient, Rows]:
    events = Rows()
    handle = Handle("pymilvus", Reporter(events, hub_loop=None), 5.0, pymilvus=True, **kw)
    return instrument(FakeClient(), handle, ["search", "insert", "outer", "broken", "asearch"]), events


def test_import_loadgen_stays_light_and_public_names_load_lazily() -> None:
    code = (
        "import sys, loadgen; light = 'gevent' not in sys.modules and 'locust' not in sys.modules; "
        "from loadgen import VectorStoreUser; import loadgen.locust.hooks as h; "
        "print(light, VectorStoreUser.abstract, 'VectorStoreUser' in dir(loadgen), 'gevent' in sys.modules)"
    )
    cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "True", "True", "True"]
    with pytest.raises(AttributeError):
        import loadgen

        _ = loadgen.NoSuchThing  # type: ignore[attr-defined]


def test_timed_calls_report_one_row_each_with_deadline_and_length() -> None:
    client, events = _timed()
    hits = client.search("c", [[0.0]], limit=2)
    assert hits == [[{"id": 1}, {"id": 2}]]  # the caller gets the library's own result
    client.outer()  # outer calls search: one row, not two
    assert [(r["request_type"], r["name"]) for r in events.rows] == [("pymilvus", "search"), ("pymilvus", "outer")]
    assert events.rows[0]["response_length"] == 2 and events.rows[0]["exception"] is None
    assert client.timeouts[0] == 5.0  # --timeout reaches pymilvus when the caller gave none
    assert all(r["response_time"] > 0 for r in events.rows)


def test_async_calls_report_as_the_async_flavour() -> None:
    client, events = _timed()
    assert asyncio.run(client.asearch("c", [[0.0]])) == [[{"id": 1}]]
    assert [(r["request_type"], r["name"], r["response_length"]) for r in events.rows] == [
        ("pymilvus-async", "asearch", 1)
    ]


def test_a_failed_call_is_reported_with_its_text_and_reraised_marked() -> None:
    client, events = _timed()
    with pytest.raises(ValueError, match="server said no") as info:
        client.broken()
    assert was_reported(info.value)
    assert "server said no" in repr(events.rows[0]["exception"])


def test_read_only_collections_refuse_writes_before_sending() -> None:
    client, events = _timed(writes=PYMILVUS_WRITES, read_only=frozenset({"theirs"}))
    with pytest.raises(ReadOnlyCollectionError, match="read-only"):
        client.insert("theirs", [{"id": 1}])
    assert events.rows == []  # nothing was sent, so nothing is reported
    assert client.insert("ours", [{"id": 1}, {"id": 2}]) == {"insert_count": 2}
    assert events.rows[0]["response_length"] == 2
    client.search("theirs", [[0.0]])  # reads are fine


def test_dataset_searches_are_scored_against_the_ground_truth() -> None:
    client, events = _timed(scoring=Scoring("c", np.array([[1, 2, 3]]), 3))
    q = QueryVector([0.0, 1.0])
    q.query_index = 0
    client.search("c", [q], limit=3)  # hits 1, 2, 9 of true 1, 2, 3
    client.search("c", [[0.0, 1.0]], limit=3)  # a vector that is no dataset query: not scored
    client.search("other", [q], limit=3)  # another collection: not scored
    assert events.rows[0]["context"]["recall"] == pytest.approx(2 / 3)
    assert ["recall" in r["context"] for r in events.rows] == [True, False, False]


def test_length_of_results() -> None:
    assert length_of({"delete_count": 4}) == 4
    assert length_of([[1, 2], [3]]) == 3  # hits of two queries
    assert length_of(["doc", "doc"]) == 2
    assert length_of(SimpleNamespace(ids=["a", "b", "c"])) == 3  # llama-index VectorStoreQueryResult
    assert length_of(None) == 0


def test_flow_steps_add_up_to_its_row_and_failures_are_rows() -> None:
    events = Rows()
    with Flow("rag", Reporter(events, hub_loop=None), 5.0) as steps:
        time.sleep(0.002)
        steps.mark("retrieve")
        time.sleep(0.001)
        steps.mark("generate")
    row = events.rows[0]
    assert (row["request_type"], row["name"], row["exception"]) == ("flow", "rag", None)
    assert list(row["context"]["steps"]) == ["retrieve", "generate", REST]
    assert sum(row["context"]["steps"].values()) == pytest.approx(row["response_time"], abs=1e-6)
    assert row["context"]["steps"]["retrieve"] >= 2.0
    with pytest.raises(KeyError) as info, Flow("rag", Reporter(events, hub_loop=None), 5.0):
        raise KeyError("no such doc")
    assert was_reported(info.value) and "no such doc" in repr(events.rows[1]["exception"])


def test_flow_listener_merges_workers_and_reports_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")  # read once, when locust is first imported
    from locust.event import Events

    def listener() -> FlowListener:
        return FlowListener(SimpleNamespace(events=Events(), runner=None))

    worker, master = listener(), listener()
    for ms in (10.0, 20.0):
        ctx = {"steps": {"retrieve": ms * 0.25, "generate": ms * 0.75}}
        worker.on_request("flow", "rag", response_time=ms, context=ctx)
    worker.on_request("flow", "rag", response_time=99.0, exception=ValueError("x"), context={"steps": {}})
    worker.on_request("pymilvus", "search", response_time=1.0, context={})
    master.merge_payload(json.loads(json.dumps(worker.to_payload())))  # what travels to the master
    res = master.results()["flows"]["rag"]
    assert res["total"]["count"] == 2 and res["total"]["mean_ms"] == pytest.approx(15.0, abs=0.01)
    assert [s["step"] for s in res["steps"]] == ["retrieve", "generate"]
    assert [round(s["share"], 3) for s in res["steps"]] == [0.25, 0.75]
    assert master.steps.percentiles("rag", TOTAL)["count"] == 2


def test_filters_fit_the_sampled_rows() -> None:
    info = CollectionInfo("docs", "pk", "emb", 4, {"lang": "str", "year": "int"}, False,
                          sample_values={"lang": ['en"x'], "year": [2021]})  # fmt: skip
    assert filter_for(info, lambda seq: seq[0]) == 'lang == "en\\"x"'
    assert filter_for(info, lambda seq: seq[-1]) == "year == 2021"


def test_custom_user_tasks_sync_async_failures_and_deadlines() -> None:
    out = run_script("custom_user_check.py")
    assert out["wrapped_tasks"] == ["async_flow", "sync_flow"] and out["on_start_ran_on_loop"]
    rows = [(r["type"], r["name"], r["error"] is None) for r in out["rows"]]
    # a sync and an async task of one user both report; the user goes on after every failure
    assert rows[:2] == [("flow", "sync", True), ("flow", "async", True)] and rows[-1] == ("flow", "async", True)
    for r in out["rows"]:
        if r["steps"] and r["error"] is None:
            assert sum(r["steps"].values()) == pytest.approx(r["ms"], abs=1e-6)
    # a crash in user code: one failed task row, raised for Locust (user_error); in a flow: the flow's row only
    assert ("task", "crash", False) in rows and out["crash"]["raised"] == "RuntimeError"
    assert ("flow", "crashing", False) in rows and out["crash_in_flow"]["raised"] is None
    assert not any(r[:2] == ("task", "crash_in_flow") for r in rows)
    # a slow coroutine stops at --timeout (0.5 s): the flow's row says so, or the task's when there is no flow
    errors = {(r["type"], r["name"]): r["error"] for r in out["rows"] if r["name"] == "slow"}
    assert "flow slow ran past --timeout 0.5 s" in errors[("flow", "slow")]
    assert "task slow ran past --timeout 0.5 s" in errors[("task", "slow")]
    assert out["slow_flow"]["raised"] is None and out["slow"]["raised"] == "CallTimeout"
    for name in ("slow_flow", "slow"):
        assert 0.45 < out[name]["elapsed"] < 3.0
