"""Recall against --dataset: the ground-truth path, the listener's merge, and real runs on the embedded Milvus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.milvus.server import ServerInfo
from loadgen.stats import recall
from loadgen.stats.checks import _recalls
from loadgen.stats.results import render_table
from loadgen.workload import truth as workload_truth
from loadgen.workload.datasets import open_dataset
from loadgen.workload.groundtruth import RecallStats
from loadgen.workload.rows import dataset_categories


def brute_force(base: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    """Exact top-k by cosine similarity over the allowed rows, the obvious way."""
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ b.astype(np.float64).T
    sims[:, ~allowed] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("keep_below", [0, 10])
def test_recall_matches_numpy_brute_force(tmp_path: Path, keep_below: int) -> None:
    ds = open_dataset("synthetic:clustered", dim=8, count=500, num_queries=20, seed=7, metric="COSINE")
    base = np.concatenate([chunk for _, chunk in ds.iter_base(128)])
    queries = ds.queries()
    cats = dataset_categories(np.arange(len(base)), 7)
    allowed = cats < keep_below if keep_below else np.ones(len(base), bool)
    expected = brute_force(base, queries, 5, allowed)
    truth = workload_truth.truth_for(ds, 5, "COSINE", keep_below=keep_below, seed=7, cache_dir=tmp_path)
    assert np.array_equal(truth, expected)
    assert all(cats[i] < keep_below for i in truth.ravel()) or not keep_below
    # cached on disk: a second call loads the same ids
    assert list(tmp_path.glob("groundtruth-*.npy"))
    assert np.array_equal(
        workload_truth.truth_for(ds, 5, "COSINE", keep_below=keep_below, seed=7, cache_dir=tmp_path), truth
    )
    # recall of given hits == |hits ∩ truth| / k, computed by hand
    work = workload_truth.Workload(ds, queries, truth, 5)
    hits = [int(expected[3][0]), int(expected[3][2]), 10**9, -1]  # 2 right, 2 wrong, one short
    assert work.recall(3, hits) == len(set(hits) & set(expected[3].tolist())) / 5 == 0.4
    assert work.recall(3, expected[3]) == 1.0


def test_categories_uniform_and_deterministic() -> None:
    cats = dataset_categories(np.arange(200_000), 42)
    counts = np.bincount(cats, minlength=100)
    assert counts.min() > 1800 and counts.max() < 2200
    assert np.array_equal(dataset_categories([3, 99, 12345], 42), cats[[3, 99, 12345]])


def test_listener_payload_merge_and_results_shape(tmp_path: Path) -> None:
    class Events:
        def __getattr__(self, name: str) -> object:
            return type("E", (), {"add_listener": lambda self, f: None})()

    env = type("Env", (), {"events": Events(), "runner": None})()
    worker, master = recall.RecallListener(env), recall.RecallListener(env, out_path=tmp_path / "recall.json")
    for value in (1.0, 0.5, 1.0):
        worker.on_request("pymilvus", "search", context={"recall": value})
    worker.on_request("pymilvus", "search", exception=RuntimeError("x"), context={"recall": 0.0})  # failed: ignored
    master.on_request("pymilvus-async", "search", context={"recall": 0.9})
    data: dict = {}
    worker.on_report_to_master("w1", data)
    assert not worker.stats  # deltas only
    master.on_worker_report("w1", json.loads(json.dumps(data)))
    master.write()
    got = recall.read_results(tmp_path / "recall.json")
    assert got["pymilvus search"]["count"] == 3 and got["pymilvus search"]["mean"] == pytest.approx(2.5 / 3)
    assert got["pymilvus search"]["p1"] == 0.5 and got["pymilvus-async search"]["p50"] == 0.9
    stats = RecallStats()
    stats.extend([1.0, 0.5, 1.0])
    assert got["pymilvus search"]["mean"] == stats.mean
    assert _recalls({"recall": got}) == {"pymilvus search": pytest.approx(2.5 / 3), "pymilvus-async search": 0.9}
    # per second (merged from the worker too): the searches and their mean recall, in time order
    rows = {r["name"] + r["type"]: r for r in json.loads((tmp_path / "recall.json").read_text())["requests"]}
    seconds = rows["searchpymilvus"]["per_second"]
    assert sum(s[1] for s in seconds) == 3 and [s[0] for s in seconds] == sorted(s[0] for s in seconds)
    assert sum(s[1] * s[2] for s in seconds) == pytest.approx(2.5)


RUN = ["--dataset", "synthetic:clustered", "--rows", "2000", "--dim", "16", "--index-type", "FLAT"]
RUN += ["--weights", "search=1", "-u", "2", "-t", "5s", "--consistency-level", "Strong"]


def _run(milvus: ServerInfo, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "out"
    proc = run_cli(
        "run", "--host", milvus.uri, *RUN, "--groundtruth-cache", str(tmp_path / "gt"), "--out", str(out), *extra,
        timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert "recall" in proc.stdout.splitlines()[0]  # the table's recall column
    return results


@pytest.mark.milvus
@pytest.mark.slow
@pytest.mark.parametrize("model", [[], ["--arrival-rate", "120"]], ids=["closed", "open"])
def test_flat_index_recall_is_exact(milvus: ServerInfo, tmp_path: Path, model: list[str]) -> None:
    """Open model too: many searches in flight on one client, each scored against its own query's hits."""
    res = _run(milvus, tmp_path, "--collection", "lg_recall_flat", "--check-min-recall", "0.99", *model)
    rec = res["recall"]
    assert set(rec) == {"pymilvus search", "pymilvus-async search"}, rec
    for entry in rec.values():
        assert entry["count"] > 0 and entry["mean"] == 1.0 and entry["p1"] == 1.0, rec
    searches = sum(m["requests"] - m["failures"] for m in res["requests"] if m["name"] == "search")
    assert sum(e["count"] for e in rec.values()) == searches  # one recall value per successful search
    assert res["checks"]["failed"] == [] and res["totals"]["failures"] == 0
    assert not any("recall" in m["name"] for m in res["requests"])  # a statistic, not a fake request


@pytest.mark.milvus
@pytest.mark.slow
def test_filtered_flat_recall_is_exact_and_hits_pass_filter(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    name = "lg_recall_filtered"
    try:
        res = _run(milvus, tmp_path, "--collection", name, "--filter-selectivity", "0.1", "--keep-data")
        assert res["settings"]["filter"] == "category < 10"
        for entry in res["recall"].values():
            assert entry["count"] > 0 and entry["mean"] == 1.0, res["recall"]
        # the prefill: dataset rows with the deterministic categories ground truth assumed
        rows = client.query(name, filter="id < 50", output_fields=["id", "category"], consistency_level="Strong")
        assert {r["id"]: r["category"] for r in rows} == dict(enumerate(dataset_categories(np.arange(50), 42).tolist()))
        # what the run searched with: every hit passes the filter
        queries = open_dataset("synthetic:clustered", dim=16, count=2000, seed=42).queries()[:5]
        hits = client.search(
            name, data=queries.tolist(), limit=10, filter="category < 10", output_fields=["category"],
            consistency_level="Strong",
        )  # fmt: skip
        assert all(len(h) == 10 for h in hits)
        assert all(hit["entity"]["category"] < 10 for h in hits for hit in h)
    finally:
        if client.has_collection(name):
            client.drop_collection(name)


def test_render_table_without_recall_has_no_column() -> None:
    res = {"requests": [], "totals": {"requests": 0, "failures": 0}, "failures": []}
    assert "recall" not in render_table(res)
