"""Recall for the LangChain and LlamaIndex layers' searches with ``--dataset`` (issue 14): their collections hold the
dataset's base rows, their query texts stand for its queries, and their k-NN searches are scored against the same
ground truth as the pymilvus layer's (``loadgen.workload.dataset_texts``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.clients.timed_recall import Scoring, langchain_recall, llamaindex_recall
from loadgen.milvus.server import ServerInfo
from loadgen.workload import dataset_texts
from loadgen.workload.embeddings import DatasetEmbedder, Embedder, hash_vector, metered


def test_texts_and_hit_keys() -> None:
    assert dataset_texts.query_index(dataset_texts.query_text(17)) == 17
    assert dataset_texts.query_index("dataset query 17 and more") is None
    assert dataset_texts.query_index("river document 17") is None
    assert dataset_texts.hit_index("17") == 17 and dataset_texts.hit_index("lg-17", "lg-") == 17
    # rows users wrote during the run are no dataset row: misses, never another row's hit
    assert dataset_texts.hit_index("lg-abc-3") == -1 and dataset_texts.hit_index("lg-node-9f", "lg-") == -1
    assert dataset_texts.hit_index("17", "lg-") == -1 and dataset_texts.hit_index(None) == -1


def test_dataset_embedder_looks_up_queries_and_embeds_the_rest_once_timed() -> None:
    queries = np.arange(12, dtype=np.float32).reshape(3, 4)
    emb = DatasetEmbedder(Embedder("fake", 4), queries)
    texts = ["dataset query 2", "a user's own text", "dataset query 0", "dataset query 9"]  # 9: no such query
    with metered() as meter:
        out = emb.embed(texts)
    assert out[0] == queries[2].tolist() and out[2] == queries[0].tolist()
    assert out[1] == hash_vector("a user's own text", 4) and out[3] == hash_vector("dataset query 9", 4)
    assert len(meter) == 1  # one embed call, one embedding time: the inner backend is not metered twice


def _doc(pk: str) -> SimpleNamespace:
    return SimpleNamespace(metadata={"pk": pk, "category": 3})


def test_timed_handles_score_framework_searches_of_dataset_queries() -> None:
    queries = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    truth = np.array([[5, 6, 7, 8], [1, 2, 3, 4], [9, 8, 7, 6]])
    s = Scoring("c", truth, 4, "", queries)
    assert s.index_of(queries[2].tolist()) == 2 and s.index_of([0.0, 0.0, 0.0, 0.0]) is None
    hits = [_doc("1"), _doc("lg-abc-0"), _doc("3")]  # one row a user wrote: a miss
    text = dataset_texts.query_text(1)
    assert langchain_recall(s, "similarity_search", (text,), {"k": 4}, hits) == 0.5
    assert langchain_recall(s, "asimilarity_search_with_score", (text, 2), {}, [(d, 0.1) for d in hits]) == 0.5
    assert langchain_recall(s, "similarity_search", (text,), {}, hits[:1]) == 0.25  # langchain's default k is 4
    vec = queries[1].tolist()
    assert langchain_recall(s, "similarity_search_by_vector", (vec,), {"k": 4}, hits) == 0.5
    assert langchain_recall(s, "similarity_search", ("river document 3",), {}, hits) is None  # no dataset query
    assert langchain_recall(s, "similarity_search", (text,), {"expr": "category < 3"}, hits) is None  # filtered
    assert langchain_recall(s, "max_marginal_relevance_search", (text,), {}, hits) is None  # diversified
    query = SimpleNamespace(query_embedding=queries[0].tolist(), similarity_top_k=4, filters=None)
    result = SimpleNamespace(ids=["lg-5", "lg-6", "lg-node-1", "lg-99"])
    assert llamaindex_recall(s, "aquery", (query,), {}, result) == 0.5
    assert llamaindex_recall(s, "query", (SimpleNamespace(**{**vars(query), "filters": "x"}),), {}, result) is None
    assert llamaindex_recall(s, "delete", ("lg-doc-1",), {}, None) is None


RUN = ["--dataset", "synthetic:clustered", "--rows", "1500", "--dim", "16", "--index-type", "FLAT"]
RUN += ["-u", "2", "-t", "6s", "--consistency-level", "Strong"]
LAYERS = {
    # searches only: a row a user adds during the run could enter a query's exact top-k and make recall < 1
    "langchain": (
        "similarity_search=2,similarity_search_by_vector=1,similarity_search_with_score=1,"
        "similarity_search_with_score_by_vector=1,max_marginal_relevance_search=1,fanout=1",
        {"similarity_search", "similarity_search_by_vector", "similarity_search_with_score",
         "similarity_search_with_score_by_vector"},
    ),
    "llamaindex": ("query=2,retrieve=1,fanout=1", {"query", "retrieve"}),
}  # fmt: skip


def _names(layer: str, op: str) -> set[tuple[str, str]]:
    asyn = {"query": "aquery", "retrieve": "aretrieve"}.get(op, "a" + op) if layer == "llamaindex" else "a" + op
    return {(layer, op), (f"{layer}-async", asyn)}


@pytest.mark.milvus
@pytest.mark.slow
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_framework_searches_are_scored_exactly_on_a_flat_index(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path, layer: str
) -> None:
    weights, scored_ops = LAYERS[layer]
    out, name = tmp_path / "out", f"lg_fw_recall_{layer}"
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", f"locustfiles/{layer}_users.py", *RUN, "--weights", weights,
        "--collection", name, "--groundtruth-cache", str(tmp_path / "gt"), "--check-min-recall", "0.99",
        "--out", str(out), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    rec = {tuple(key.split(" ", 1)): entry for key, entry in res["recall"].items()}
    rows = {(r["type"], r["name"]): r for r in res["requests"]}
    scored_rows = set().union(*(_names(layer, op) for op in scored_ops))
    ran = {key for key, row in rows.items() if row["successes"]}
    main = _names(layer, "similarity_search" if layer == "langchain" else "query")
    assert main <= ran, sorted(ran)  # the weight-2 search ran in both flavours (the others may not, by chance)
    fanout = {key for key in ran if key[0].endswith("-fanout")}  # the fan-out's calls are the layer's search
    # every k-NN search row that ran is scored; MMR is not (diversified on purpose), nor anything else
    assert set(rec) == (ran & scored_rows) | fanout, (sorted(rec), sorted(ran))
    for key, entry in rec.items():
        # FLAT and Strong: every search of a dataset query returns its true top-k, scored through the library's
        # own result objects (pk in the metadata, node ids): a wrong key mapping would read 0, not 1
        assert entry["mean"] == 1.0 and entry["count"] == rows[key]["successes"], (key, entry, rows[key])
    assert res["totals"]["failures"] == 0 and res["checks"]["failed"] == []
    assert not client.has_collection(f"{name}_{layer}")  # created by this run, dropped at its end


@pytest.mark.milvus
@pytest.mark.slow
def test_a_framework_collection_without_the_datasets_rows_is_refused_and_kept(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    name = "lg_fw_recall_reuse"
    common = ["run", "--host", milvus.uri, "-f", "locustfiles/langchain_users.py", "--dim", "16", "-u", "1",
              "-t", "2s", "--weights", "similarity_search=1,fanout=0", "--collection", name]  # fmt: skip
    try:
        first = run_cli(*common, "--rows", "300", "--keep-data", "--out", str(tmp_path / "a"), timeout=180)
        assert first.returncode == 0, first.stderr[-3000:]
        before = client.query(f"{name}_langchain", filter="", output_fields=["count(*)"], consistency_level="Strong")
        second = run_cli(*common, "--dataset", "synthetic:clustered", "--rows", "300", "--out", str(tmp_path / "b"),
                         timeout=180)  # fmt: skip
        assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
        errors = [line for line in second.stderr.splitlines() if line.startswith("loadgen: error:")]
        assert len(errors) == 1 and "holds rows that are not --dataset synthetic:clustered's" in errors[0], errors
        assert "Traceback" not in second.stderr
        after = client.query(f"{name}_langchain", filter="", output_fields=["count(*)"], consistency_level="Strong")
        assert after == before  # nothing added, nothing dropped
    finally:
        if client.has_collection(f"{name}_langchain"):
            client.drop_collection(f"{name}_langchain")
