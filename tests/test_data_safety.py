"""Data safety through whole runs: loadgen writes only into collections it created (or one it was explicitly allowed
into), cleanup drops only its own, --keep-data keeps them, and nobody else's collection changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from pymilvus import MilvusClient

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
    proc = run_cli("run", "--host", milvus.uri, *RUN, "--out", str(out), *args, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


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
    # 3. reuse of loadgen's kept collection without --keep-data (and --require-existing): used, then dropped
    _run(milvus, tmp_path / "reuse", "--collection", "lg_safety", "--require-existing")
    assert not client.has_collection("lg_safety")
    # the collection nobody named never changed
    assert snapshot(client)["users_other"] == untouched
    assert client.has_collection("users_docs")
