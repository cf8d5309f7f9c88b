"""LangChain's and LlamaIndex's own hybrid and full-text search as Locust users (``locustfiles/hybrid_users.py``):
refused in one line by Milvus 2.3.5 and, for llama-index's TEXT_SEARCH, by milvus-lite, before anything is created;
a short run against milvus-lite has rows for every class, sync and async, and their relevance against the qrels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from pymilvus import MilvusClient

from loadgen.milvus.server import EmbeddedMilvus, ServerInfo

pytestmark = pytest.mark.milvus
LOCUSTFILE = "locustfiles/hybrid_users.py"
NO_TEXT_SEARCH = "similarity_search[hybrid-rrf]=2,similarity_search[hybrid-weighted]=1,query[hybrid-rrf]=2," \
                 "query[hybrid-weighted]=1,fanout=1"  # fmt: skip


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    server = EmbeddedMilvus(tmp_path_factory.mktemp("lite-hybrid"), engine="lite", die_with_parent=True)
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


def _refused(uri: str, tmp_path: Path, *args: str) -> str:
    client = MilvusClient(uri=uri, timeout=10, alias=f"hybrid-{tmp_path.name}")
    try:
        before = snapshot(client)
        proc = run_cli("run", "--host", uri, "-f", LOCUSTFILE, "-u", "2", "-t", "3s", "--rows", "40",
                       "--out", str(tmp_path / "o"), *args, timeout=180)  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-3000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("loadgen: error: ")]
        assert len(errors) == 1, proc.stderr[-3000:]
        assert snapshot(client) == before  # nothing created, nothing written
        return errors[0]
    finally:
        client.close()


def test_an_old_server_refuses_with_one_line(milvus: ServerInfo, tmp_path: Path) -> None:
    line = _refused(milvus.uri, tmp_path)
    assert "needs Milvus >= 2.5.0; the server at" in line and "v2.3.5" in line, line


def test_lite_refuses_llamaindex_text_search_before_anything_is_created(lite: ServerInfo, tmp_path: Path) -> None:
    line = _refused(lite.uri, tmp_path)  # the default weights include query[text_search]
    assert line.startswith("loadgen: error: operation 'query[text_search]' cannot run against milvus_lite-"), line


@pytest.mark.slow
def test_a_short_run_against_milvus_lite(lite: ServerInfo, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(
        "run", "--host", lite.uri, "-f", LOCUSTFILE, "-u", "4", "-r", "4", "-t", "6s", "--rows", "60", "--dim", "16",
        "--weights", NO_TEXT_SEARCH, "--collection", "lg_hybrid_run", "--out", str(out), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["totals"]["failures"] == 0, results["failures"]
    types = {r["type"] for r in results["requests"] if r["successes"]}
    assert {"langchain-hybrid", "langchain-hybrid-async", "llamaindex-hybrid", "llamaindex-hybrid-async"} <= types
    relevance = results["retrieval"]["relevance"]
    for r in results["requests"]:  # every search row scored against the qrels, sync, async and fan-out alike
        rel = relevance[f"{r['type']} {r['name']}"]
        assert rel["ndcg@10"]["count"] == r["successes"] and 0 <= rel["ndcg@10"]["mean"] <= 1
        assert 0 <= rel["relevance_recall"]["mean"] <= 1
    names = {r["name"] for r in results["requests"]}
    assert {"similarity_search[hybrid-rrf]", "asimilarity_search[hybrid-weighted]", "query[hybrid-rrf]",
            "aquery[hybrid-weighted]"} <= names  # fmt: skip
    assert "relevance langchain-hybrid similarity_search[hybrid-rrf]: recall@k " in proc.stdout
    client = MilvusClient(uri=lite.uri, timeout=10, alias="hybrid-after")
    try:  # the collections the run created, dropped at its end
        assert not {"lg_hybrid_run_lc_hybrid", "lg_hybrid_run_li_hybrid"} & set(client.list_collections())
    finally:
        client.close()
