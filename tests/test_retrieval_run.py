"""The retrieval users through ``loadgen run``: refused with one line by Milvus 2.3.5 (too old for BM25 and hybrid
search), and a short real run against milvus-lite with its statistics in results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from pymilvus import MilvusClient

from loadgen.milvus.server import ServerInfo

pytestmark = pytest.mark.milvus
LOCUSTFILE = "locustfiles/retrieval_users.py"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("", "operation 'full_text_search' needs Milvus >= 2.5.0; the server at {uri} is v2.3.5-lite"),
        ("hybrid_search_rrf=1", "operation 'hybrid_search_rrf' needs Milvus >= 2.4.0; the server at {uri} is v2.3.5"),
        # range search alone is served by 2.3, but the collection's BM25 function is not
        ("range_search=1", "operation 'create_collection (BM25 function schema)' needs Milvus >= 2.5.0"),
    ],
)
def test_an_old_server_refuses_with_one_line(milvus: ServerInfo, tmp_path: Path, weights: str, message: str) -> None:
    client = MilvusClient(uri=milvus.uri, timeout=10, alias="retrieval-old")
    try:
        before = snapshot(client)
        args = ["run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "1", "-t", "3s", "--out", str(tmp_path / "o")]
        proc = run_cli(*args, *(["--weights", weights] if weights else []), timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("loadgen: error: "), proc.stderr[-3000:]
        assert message.format(uri=milvus.uri) in lines[0], lines[0]
        assert snapshot(client) == before  # nothing created, nothing written
    finally:
        client.close()


@pytest.mark.slow
def test_a_short_run_against_milvus_lite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(
        "run", "--engine", "lite", "-f", LOCUSTFILE, "-u", "4", "-r", "4", "-t", "8s", "--rows", "150", "--dim", "16",
        "--tenants", "6", "--out", str(out), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["totals"]["requests"] > 0 and results["totals"]["failures"] == 0, results["failures"]
    names = {r["name"] for r in results["requests"]}
    retrieval = results["retrieval"]
    assert retrieval["relevance"] and retrieval["freshness"]
    assert {"freshness_probe", "query[freshness]"} <= names  # the write and its queries: rows of one call each
    assert {key.split()[1] for key in retrieval["tenant"]} <= {"hot", "warm", "cold"}
    if names & {"search_iterator", "query_iterator"}:
        assert retrieval["first_page"]


def test_compare_modes_bad_mode_is_one_line() -> None:
    proc = run_cli("compare", "--modes", "dense,colbert", timeout=60)  # refused before any server starts
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--modes: unknown mode 'colbert'" in lines[0], proc.stderr[-2000:]


def test_compare_modes_on_an_old_server_is_one_line(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli("compare", "--host", milvus.uri, "--modes", "dense,bm25", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("loadgen: error: operation 'full_text_search' needs Milvus >= 2.5.0"), lines


@pytest.mark.slow
def test_compare_modes_against_milvus_lite(tmp_path: Path) -> None:
    proc = run_cli(
        "compare", "--engine", "lite", "--modes", "dense,bm25,hybrid", "--rows", "150", "--dim", "16",
        "--mode-queries", "20", "--out", str(tmp_path), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "modes.json").read_text())
    rows = {r["mode"]: r for r in doc["rows"]}
    assert list(rows) == ["dense", "bm25", "hybrid"]
    assert all(r["errors"] == 0 and r["queries"] == 20 and r["p50_ms"] > 0 for r in rows.values())
    # each generated query is a few rare words of its one relevant document: BM25 finds most of them
    assert rows["bm25"]["ndcg10"] > 0.5 and rows["bm25"]["ndcg10"] >= rows["dense"]["ndcg10"]
    assert (tmp_path / "modes.png").stat().st_size > 0
    assert "bm25" in proc.stdout and "NDCG@10" in proc.stdout
