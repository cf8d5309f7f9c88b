"""Data safety through whole runs: loadgen writes only into collections it created (or one it was explicitly allowed
into), cleanup drops only its own, --keep-data keeps them, and nobody else's collection changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from pymilvus import DataType, MilvusClient

from loadgen.milvus import collection
from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
RUN = ["-u", "2", "-t", "4s", "--rows", "300", "--dim", "16", "--weights", "search=2,insert=1,upsert=1,delete=1"]


@pytest.fixture
def users_collections(client: MilvusClient) -> Iterator[None]:
    """Two collections of a user's: one loadgen will be allowed to write into, one it must never see."""
    for name in ("users_docs", "users_other"):
        client.create_collection(name, dimension=16, consistency_level="Strong")
        client.insert(name, [{"id": i, "vector": [float(i + 1)] * 16} for i in range(5)])
    yield
    for name in ("users_docs", "users_other", "lg_safety"):
        if client.has_collection(name):
            client.drop_collection(name)


def _run(milvus: ServerInfo, out: Path, *args: str) -> dict:
    return _run_logged(milvus, out, *args)[0]


def _run_logged(milvus: ServerInfo, out: Path, *args: str, run: list[str] = RUN) -> tuple[dict, str]:
    proc = run_cli("run", "--host", milvus.uri, *run, "--out", str(out), *args, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count(" ready: ") == 1, proc.stderr[-3000:]  # prepared once (at init, not again at test_start)
    return json.loads((out / "results.json").read_text()), proc.stderr


def test_keep_data_foreign_allowed_and_cleanup_of_own_only(
    milvus: ServerInfo, client: MilvusClient, users_collections: None, tmp_path: Path
) -> None:
    untouched = snapshot(client)["users_other"]
    # 1. --keep-data: loadgen's collection stays, marked as loadgen's, filled
    _run(milvus, tmp_path / "keep", "--collection", "lg_safety", "--keep-data")
    assert client.has_collection("lg_safety")
    assert collection.is_owned(client.describe_collection("lg_safety"))
    kept = snapshot(client)["lg_safety"][1]
    assert kept >= 300
    # 2. a user's collection, explicitly allowed: written (inserts), never filled, never dropped, never re-described
    res = _run(milvus, tmp_path / "foreign", "--collection", "users_docs", "--allow-foreign-collection")
    inserted = sum(m["requests"] - m["failures"] for m in res["requests"] if m["name"] == "insert")
    assert inserted > 0
    desc, rows = snapshot(client)["users_docs"]
    assert desc == "" and not collection.is_owned(client.describe_collection("users_docs"))
    assert rows >= 5
    # the user's own rows are exactly as they were: no upsert rewrote them, no delete removed them
    mine = client.get("users_docs", ids=list(range(5)), output_fields=["id", "vector"])
    assert sorted((r["id"], [round(x) for x in r["vector"]]) for r in mine) == [(i, [i + 1] * 16) for i in range(5)]
    # 3. reuse of loadgen's kept collection without --keep-data (and --require-existing): used, and kept, because
    #    an earlier run created it (a run drops only what it created); the log says so and how to drop it
    _, log = _run_logged(milvus, tmp_path / "reuse", "--collection", "lg_safety", "--require-existing")
    assert client.has_collection("lg_safety") and collection.is_owned(client.describe_collection("lg_safety"))
    assert "kept collection lg_safety: reused from an earlier run; pass --recreate or --drop-reused" in log, log
    # 4. --drop-reused: used, then dropped
    _, log = _run_logged(milvus, tmp_path / "drop", "--collection", "lg_safety", "--drop-reused")
    assert not client.has_collection("lg_safety"), log[-3000:]
    assert "dropped collection lg_safety (reused from an earlier run; --drop-reused)" in log, log
    # the collection nobody named never changed
    assert snapshot(client)["users_other"] == untouched
    assert client.has_collection("users_docs")


# ---- every layer ------------------------------------------------------------------------------------------------
LOCUSTFILES = {"langchain": "locustfiles/langchain_users.py", "llamaindex": "locustfiles/llamaindex_users.py"}
LAYER_RUN = ["-u", "2", "-t", "3s", "--rows", "200", "--dim", "16"]
WRITES = {  # every write of the layer, and a search
    "langchain": "add_texts=1,add_documents=1,add_embeddings=1,delete=1,delete_expr=1,upsert=3,from_texts=1,"
    "similarity_search=1",
    "llamaindex": "add=2,delete=1,delete_nodes=1,from_documents=1,query=1,get_nodes=1",
}


@pytest.mark.parametrize("layer", ["langchain", "llamaindex"])
def test_keep_data_collection_survives_a_later_run_in_every_layer(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path, layer: str
) -> None:
    base, name = f"lg_keep_{layer}", f"lg_keep_{layer}_{layer}"
    # no MMR next to deletes: langchain-milvus's MMR fails when another user deletes a hit mid-call (a library race
    # loadgen reports as a failure), and this test is about what happens to the collection, not about that
    mix = {"langchain": "similarity_search=2,add_texts=1,delete=1", "llamaindex": "query=2,add=1,delete=1"}[layer]
    run = ["-f", LOCUSTFILES[layer], *LAYER_RUN, "--collection", base, "--weights", mix]
    try:
        _run_logged(milvus, tmp_path / "first", "--keep-data", run=run)
        assert client.has_collection(name) and collection.is_owned(client.describe_collection(name))
        _, log = _run_logged(milvus, tmp_path / "second", run=run)  # no --keep-data: reused, so kept
        assert client.has_collection(name)
        assert f"kept collection {name}: reused from an earlier run" in log, log[-3000:]
    finally:
        if client.has_collection(name):
            client.drop_collection(name)


def _users_langchain_collection(client: MilvusClient, name: str) -> list[dict]:
    """A user's collection with langchain-milvus's schema, whose keys are those loadgen's own rows would get
    ("0".."rows-1")."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=65535)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
    schema.add_field("category", DataType.INT64)
    schema.add_field("source", DataType.VARCHAR, max_length=65535)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rows = [
        {"pk": str(i), "text": f"user text {i}", "vector": [float(i + 1)] + [0.5] * 15, "category": i, "source": "user"}
        for i in range(5)
    ]
    client.insert(name, rows)
    client.flush(name)
    return [{k: r[k] for k in ("pk", "text", "category", "source")} for r in rows]


def _users_llamaindex_collection(milvus: ServerInfo, name: str) -> list[dict]:
    """A user's collection made by a user's LlamaIndex app, with node ids like loadgen's ("lg-N")."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.vector_stores.milvus import MilvusVectorStore

    store = MilvusVectorStore(
        uri=milvus.uri, collection_name=name, dim=16, similarity_metric="COSINE", use_async_client=False,
        consistency_level="Strong", alias="users-app",
    )  # fmt: skip
    nodes = [
        TextNode(
            id_=f"lg-{i}",
            text=f"user text {i}",
            embedding=[float(i + 1)] + [0.5] * 15,
            metadata={"category": i},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"lg-fill-{i}")},
        )
        for i in range(5)
    ]
    store.add(nodes)
    store.client.flush(name)
    store.client.close()
    return [{"id": f"lg-{i}", "doc_id": f"lg-fill-{i}", "text": f"user text {i}"} for i in range(5)]


@pytest.mark.parametrize("layer", ["langchain", "llamaindex"])
def test_foreign_collection_rows_are_untouched_in_every_layer(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path, layer: str
) -> None:
    """With --allow-foreign-collection, every write of the layer runs against a user's collection; reading the
    user's rows back shows none changed or went missing (the pymilvus layer: the first test above)."""
    base, name = f"users_app_{layer}", f"users_app_{layer}_{layer}"
    key = "pk" if layer == "langchain" else "id"
    if layer == "langchain":
        before = _users_langchain_collection(client, name)
    else:
        before = _users_llamaindex_collection(milvus, name)
    desc_before = client.describe_collection(name)
    try:
        run = ["-f", LOCUSTFILES[layer], *LAYER_RUN, "-u", "4", "-t", "5s", "--collection", base]
        res, _ = _run_logged(milvus, tmp_path, "--allow-foreign-collection", "--weights", WRITES[layer], run=run)
        writes = [m for m in res["requests"] if m["name"].lstrip("a").startswith(("upsert", "delete", "add"))]
        assert sum(m["requests"] - m["failures"] for m in writes) > 0, res["requests"]  # the writes did run
        keys = ", ".join(f'"{row[key]}"' for row in before)
        after = client.query(
            name, filter=f"{key} in [{keys}]", output_fields=list(before[0]), consistency_level="Strong"
        )
        assert sorted(after, key=lambda r: r[key]) == before  # none rewritten, none deleted
        assert client.describe_collection(name)["description"] == desc_before["description"]
        assert not collection.is_owned(client.describe_collection(name))  # never stamped as loadgen's
    finally:
        client.drop_collection(name)
