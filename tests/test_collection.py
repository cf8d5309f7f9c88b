"""Collection lifecycle against the real Milvus: marker, fill once, and refusal to touch what loadgen did not create."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import snapshot
from pymilvus import DataType, MilvusClient

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import collection
from loadgen.milvus.readiness import GROWING
from loadgen.milvus.server import ServerInfo

pytestmark = pytest.mark.milvus


@pytest.fixture
def foreign(client: MilvusClient) -> Iterator[str]:
    """A user's own collection, made with raw pymilvus: loadgen must never drop or write it."""
    name = "users_own_data"
    client.create_collection(name, dimension=16, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [float(i)] * 16} for i in range(5)])
    yield name
    client.drop_collection(name)


def test_prepare_creates_marked_collection_fills_once_and_drops_only_its_own(
    milvus: ServerInfo, client: MilvusClient
) -> None:
    s = Settings(uri=milvus.uri, collection="lg_lifecycle", dim=16, rows=2500, index_type="HNSW")
    p = collection.prepare(s, progress=False)
    assert (p.created, p.owned, p.rows) == (True, True, 2500)
    desc = client.describe_collection("lg_lifecycle")
    assert collection.MARKER in desc["description"]
    again = collection.prepare(s, progress=False)  # a second test run reuses it: no second fill
    assert (again.created, again.rows) == (False, 2500)
    with pytest.raises(LoadgenError, match=r"dimension mismatch.*--recreate"):
        collection.prepare(Settings(uri=milvus.uri, collection="lg_lifecycle", dim=8, rows=10), progress=False)
    rebuilt = collection.prepare(Settings(uri=milvus.uri, collection="lg_lifecycle", dim=8, rows=10, recreate=True))
    assert (rebuilt.created, rebuilt.rows) == (True, 10)
    assert collection.drop_if_owned(s) is True
    assert not client.has_collection("lg_lifecycle")


def test_foreign_collection_is_refused_and_untouched(milvus: ServerInfo, client: MilvusClient, foreign: str) -> None:
    before = snapshot(client)
    s = Settings(uri=milvus.uri, collection=foreign, dim=16, rows=100)
    for action in (collection.check, collection.prepare):
        with pytest.raises(LoadgenError, match="was not created by loadgen"):
            action(s)
    with pytest.raises(LoadgenError, match="--recreate refused"):
        collection.prepare(Settings(uri=milvus.uri, collection=foreign, dim=16, recreate=True))
    assert collection.drop_if_owned(s) is False
    assert snapshot(client) == before


def test_foreign_collection_with_flag_is_validated_not_filled(
    milvus: ServerInfo, client: MilvusClient, foreign: str
) -> None:
    # the fixture's collection has a dynamic field, so loadgen's rows fit; it is loaded, never filled or dropped
    s = Settings(uri=milvus.uri, collection=foreign, dim=16, rows=100, allow_foreign_collection=True)
    p = collection.prepare(s, progress=False)
    assert (p.owned, p.created, p.rows) == (False, False, 5)
    assert collection.drop_if_owned(s) is False
    assert snapshot(client)[foreign] == ("", 5)
    # a strict schema without loadgen's fields is refused up front
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
    client.create_collection("users_strict", schema=schema)
    try:
        strict = Settings(uri=milvus.uri, collection="users_strict", dim=16, allow_foreign_collection=True)
        with pytest.raises(LoadgenError, match="lacks fields loadgen writes: text, category, price"):
            collection.check(strict)
    finally:
        client.drop_collection("users_strict")


@pytest.mark.parametrize(
    ("index_type", "params", "message"),
    [
        ("HNSW", {"M": 0}, r"M=0 must be an integer in \[2, 2048\]"),
        ("HNSW", {"nlist": 8}, "unknown key 'nlist'"),
        ("IVF_FLAT", {"nlist": "many"}, "nlist='many'"),
        ("FLAT", {"M": 8}, "unknown key 'M'"),
    ],
)
def test_invalid_index_params_touch_nothing(
    milvus: ServerInfo, client: MilvusClient, index_type: str, params: dict[str, object], message: str
) -> None:
    before = snapshot(client)
    s = Settings(uri=milvus.uri, collection="lg_badindex", dim=8, index_type=index_type, index_params=params)
    with pytest.raises(LoadgenError, match=message):
        collection.prepare(s)
    assert snapshot(client) == before


def test_a_created_collection_is_loaded_after_its_rows_are_indexed_or_at_once_when_empty(
    milvus: ServerInfo, client: MilvusClient
) -> None:
    """A collection loadgen creates is loaded once, after its fill, flush and index: the query node serves the
    indexed (sealed) segments from the first search; one with no rows is loaded as it is."""
    for rows in (0, 1500):
        s = Settings(uri=milvus.uri, collection=f"lg_load_once_{rows}", dim=8, rows=rows)
        try:
            p = collection.prepare(s, progress=False)
            assert (p.created, p.rows) == (True, rows)
            assert str(client.get_load_state(s.collection)["state"]).endswith("Loaded")
            sealed = [seg for seg in client.list_loaded_segments(s.collection) if int(seg.state) != GROWING]
            assert sum(seg.num_rows for seg in sealed) == rows
            assert len(client.search(s.collection, [[0.5] * 8], limit=3)[0]) == min(rows, 3)
        finally:
            collection.drop_if_owned(s)
