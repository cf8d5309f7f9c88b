"""The LlamaIndex layer against the real embedded Milvus: every operation of both users, a bad filter, safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.clients import operation_names
from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
LOCUSTFILE = "locustfiles/llamaindex_users.py"
ALL_TASKS = ",".join(f"{op}=1" for op in operation_names("llamaindex")) + ",fanout=1"
SYNC_NAMES = {
    "add": "add", "query": "query", "query_filtered": "query[filtered]", "delete": "delete",
    "delete_nodes": "delete_nodes", "get_nodes": "get_nodes", "from_documents": "VectorStoreIndex.from_documents",
    "retrieve": "retrieve",
}  # fmt: skip
ASYNC_NAMES = {
    "add": "async_add", "query": "aquery", "query_filtered": "aquery[filtered]", "delete": "adelete",
    "delete_nodes": "adelete_nodes", "get_nodes": "aget_nodes", "from_documents": "VectorStoreIndex.from_documents",
    "retrieve": "aretrieve",
}  # fmt: skip


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def by_key(results: dict) -> dict[tuple[str, str], dict]:
    return {(m["type"], m["name"]): m for m in results["requests"]}


def test_every_operation_of_both_users_succeeds(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "4", "-t", "10s", "--rows", "300", "--dim", "32",
        "--weights", ALL_TASKS, "--collection", "lg_li", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results_of(tmp_path)
    stats = by_key(res)
    for op in operation_names("llamaindex"):
        for key in (("llamaindex", SYNC_NAMES[op]), ("llamaindex-async", ASYNC_NAMES[op])):
            assert key in stats, (key, sorted(stats))
            assert stats[key]["requests"] > 0, key
            assert stats[key]["failures"] == 0, (key, res["failures"])
    fanout = stats[("llamaindex-async-fanout", "aquery")]
    assert fanout["requests"] > 0 and fanout["failures"] == 0
    # the embedder is metered apart, as each row's own statistic: ingestion and retrieval embed text
    assert "embedding" not in {m["type"] for m in res["requests"]}
    assert stats[("llamaindex", "VectorStoreIndex.from_documents")]["embedding"]["count"] > 0
    assert stats[("llamaindex", "retrieve")]["embedding"]["count"] > 0
    assert stats[("llamaindex-async", "aretrieve")]["embedding"]["count"] > 0
    assert res["totals"]["failures"] == 0
    assert "lg_li_llamaindex ready: 300 rows, created" in proc.stderr
    assert not client.has_collection("lg_li_llamaindex")


def test_invalid_filter_is_refused_before_load_with_the_server_message(milvus: ServerInfo, tmp_path: Path) -> None:
    """Milvus parses --filter before any user starts (collection.check_filter): one line with the server's text."""
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "2", "-t", "5s", "--rows", "100", "--dim", "16",
        "--weights", "query=1,query_filtered=1,get_nodes=1", "--filter", "category === 3 oops",
        "--collection", "lg_li_bad", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot parse expression: category === 3 oops" in lines[0], proc.stderr
    assert not (tmp_path / "results.json").exists()  # no load ran


def test_foreign_collection_is_refused_and_untouched(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    client.create_collection("lg_li_team_llamaindex", dimension=16)
    client.insert("lg_li_team_llamaindex", [{"id": i, "vector": [0.1] * 16} for i in range(5)])
    client.flush("lg_li_team_llamaindex")
    before = client.describe_collection("lg_li_team_llamaindex")
    try:
        proc = run_cli(
            "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-t", "3s", "--dim", "16", "--collection", "lg_li_team",
            "--out", str(tmp_path), timeout=90,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-3000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("loadgen: error: ")]
        assert len(errors) == 1, proc.stderr
        assert "'lg_li_team_llamaindex' exists and was not created by loadgen" in errors[0]
        after = client.describe_collection("lg_li_team_llamaindex")
        assert after == before
        rows = client.query("lg_li_team_llamaindex", filter="", output_fields=["count(*)"], consistency_level="Strong")
        assert rows[0]["count(*)"] == 5
    finally:
        client.drop_collection("lg_li_team_llamaindex")
