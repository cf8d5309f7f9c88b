"""The LangChain layer (langchain_milvus.Milvus, sync and async) through `loadgen run`, against the real Milvus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from pymilvus import MilvusClient

from loadgen.clients import operation_names
from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
LOCUSTFILE = "locustfiles/langchain_users.py"
SMALL = ["--rows", "300", "--dim", "32"]
ALL_TASKS = ",".join(f"{op}=1" for op in operation_names("langchain")) + ",fanout=1"
MMR = ("max_marginal_relevance_search", "max_marginal_relevance_search_by_vector")
SEARCHES = ("similarity_search", "similarity_search_by_vector", "search_by_metadata")


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def by_key(results: dict) -> dict[tuple[str, str], dict]:
    return {(m["type"], m["name"]): m for m in results["requests"]}


def names(op: str) -> dict[str, str]:
    """Request type -> request name: the library's sync method, and its async twin."""
    name = "delete[expr]" if op == "delete_expr" else op
    return {"langchain": name, "langchain-async": "a" + name}


def test_every_operation_of_both_users_runs(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "4", "-t", "10s", *SMALL, "--weights", ALL_TASKS,
        "--collection", "lg_lc", "--out", str(tmp_path),
    )  # fmt: skip
    res = results_of(tmp_path)
    stats = by_key(res)
    # the one known library failure: MMR's search-then-query loses hits other users delete in between
    unexpected = [f for f in res["failures"] if not f["error"].startswith("MMRRaceError(")]
    assert not unexpected, unexpected
    assert proc.returncode == (1 if res["failures"] else 0), proc.stderr[-3000:]
    for op in operation_names("langchain"):
        for kind, name in names(op).items():
            assert stats[(kind, name)]["requests"] > 0, (kind, name)
            if op not in MMR:
                assert stats[(kind, name)]["failures"] == 0, (kind, name)
    fanout = stats[("langchain-async-fanout", "asimilarity_search")]
    assert fanout["requests"] > 0 and fanout["failures"] == 0
    # rows are store calls only; embedding time is each row's own statistic, per method that embedded
    assert "embedding" not in {m["type"] for m in res["requests"]}
    assert stats[("langchain", "add_texts")]["embedding"]["count"] > 0
    assert stats[("langchain-async", "asimilarity_search")]["embedding"]["count"] > 0
    assert "embedding" not in stats[("langchain", "similarity_search_by_vector")]  # vectors made before the call
    assert not client.has_collection("lg_lc_langchain")  # created by loadgen, dropped at the end


def test_invalid_filter_is_refused_before_load_with_server_text(milvus: ServerInfo, tmp_path: Path) -> None:
    """Milvus parses --filter before any user starts (collection.check_filter): one line with the server's text."""
    weights = "similarity_search=2,similarity_search_by_vector=1,search_by_metadata=1,add_texts=1"
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "2", "-t", "4s", "--rows", "100", "--dim", "32",
        "--weights", weights, "--filter", "category <<< 3", "--collection", "lg_lc_filter", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot parse expression: category <<< 3" in lines[0], proc.stderr
    assert not (tmp_path / "results.json").exists()  # no load ran


def test_foreign_collection_is_refused_and_untouched(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    client.create_collection("lg_team_langchain", dimension=32)
    try:
        before = snapshot(client)
        proc = run_cli(
            "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-t", "3s", "--dim", "32", "--collection", "lg_team",
            "--out", str(tmp_path), timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-3000:]
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith("loadgen: error: "), proc.stderr[-3000:]
        assert "'lg_team_langchain' exists and was not created by loadgen" in errors[0]
        assert snapshot(client) == before
    finally:
        client.drop_collection("lg_team_langchain")


def test_one_failing_operation_fail_ratio_is_failed_store_calls_over_store_calls(
    milvus: ServerInfo, tmp_path: Path
) -> None:
    """Searches filtered on a field the LangChain collection does not have are refused by the server at run time
    (the filter parses: loadgen's pre-check has a dynamic schema); writes succeed. The fail ratio is over store
    calls only (embedding is no request row), and --check-fail-ratio sees that same ratio."""
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", LOCUSTFILE, "-u", "4", "-t", "6s", *SMALL, "--filter", "nosuchfield > 1",
        "--weights", "similarity_search=2,add_texts=1,fanout=0",
        "--collection", "lg_lc_failing", "--check-fail-ratio", "0.05", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-3000:]
    res = results_of(tmp_path)
    rows = by_key(res)
    assert set(rows) == {("langchain", "similarity_search"), ("langchain-async", "asimilarity_search"),
                         ("langchain", "add_texts"), ("langchain-async", "aadd_texts")}  # fmt: skip
    searches = rows[("langchain", "similarity_search")], rows[("langchain-async", "asimilarity_search")]
    writes = rows[("langchain", "add_texts")], rows[("langchain-async", "aadd_texts")]
    assert all(m["failures"] == m["requests"] > 0 for m in searches), res["failures"]
    assert all(m["failures"] == 0 < m["requests"] for m in writes)
    calls = sum(m["requests"] for m in (*searches, *writes))
    failed = sum(m["requests"] for m in searches)
    assert (res["totals"]["requests"], res["totals"]["failures"]) == (calls, failed)
    assert res["totals"]["fail_ratio"] == pytest.approx(failed / calls)
    [line] = res["checks"]["failed"]
    assert f"({failed} of {calls} requests)" in line and line in proc.stderr
