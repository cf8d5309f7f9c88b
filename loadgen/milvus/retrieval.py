"""The retrieval collection: loadgen's schema for full-text, sparse, hybrid and multi-tenant workloads.

Fields: ``id`` (INT64 primary key: the document's position in the corpus), ``text`` (VARCHAR with an analyzer and
match index), ``dense`` (FLOAT_VECTOR), ``sparse`` (SPARSE_FLOAT_VECTOR filled by the server's BM25 function from
``text``), ``learned`` (SPARSE_FLOAT_VECTOR the client fills, standing in for a learned sparse model; metric IP),
``tenant`` (INT64 partition key: document i belongs to tenant i mod --tenants) and ``category`` (INT64, for grouping).
Created and filled once per run, marked as loadgen's like the other collections (``collection.MARKER`` and, because
milvus-lite does not keep descriptions, the ``OWNER_PROPERTY`` property); only ever dropped if loadgen created it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymilvus import DataType, Function, FunctionType, MilvusClient

from loadgen.config.settings import Settings
from loadgen.milvus import capabilities, ownership, preparation
from loadgen.milvus.collection import FILL_BATCH, Prepared, count_rows, release, setup_client
from loadgen.milvus.ownership import MARKER
from loadgen.workload.corpus import MAX_TEXT_CHARS, Corpus
from loadgen.workload.text_vectors import TextVectors, sparse_vector

CATEGORIES = 10  # grouping search groups by category: few enough groups that each has several hits
FIELDS = ("id", "text", "dense", "sparse", "learned", "tenant", "category")
# the schema itself (an analyzer on a VARCHAR, a BM25 function) needs this release, whatever the operations
SCHEMA_NEEDS = ("create_collection (BM25 function schema)", capabilities.FULL_TEXT_BM25)


def collection_name(settings: Settings) -> str:
    return f"{settings.collection}_retrieval"


def tenant_of(doc: int, tenants: int) -> int:
    return doc % tenants


def schema(settings: Settings) -> Any:
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=MARKER)
    s.add_field("id", DataType.INT64, is_primary=True)
    # max_length counts bytes: MAX_TEXT_CHARS characters of up to 4 UTF-8 bytes each
    s.add_field("text", DataType.VARCHAR, max_length=4 * MAX_TEXT_CHARS, enable_analyzer=True, enable_match=True)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=settings.dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("learned", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("tenant", DataType.INT64, is_partition_key=True)
    s.add_field("category", DataType.INT64)
    bm25 = Function(
        name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
    )
    s.add_function(bm25)
    return s


def index_params(client: MilvusClient, settings: Settings) -> Any:
    idx = client.prepare_index_params()
    idx.add_index("dense", index_type="AUTOINDEX", metric_type=settings.metric_type)
    # the server's own BM25 k1/b: pymilvus 2.6.9 sends index params as flat keys, which milvus-lite 3.2.2 ignores
    # (it reads only a JSON "params" key), so spelling out Milvus's 1.2/0.75 would change nothing there anyway
    idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    idx.add_index("learned", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    return idx


def rows(corpus: Corpus, first: int, last: int, vectors: TextVectors, tenants: int) -> list[dict[str, Any]]:
    texts = corpus.texts[first:last]
    dense = vectors.dense(texts)
    return [
        {
            "id": first + i,
            "text": text,
            "dense": dense[i],
            "learned": sparse_vector(text),
            "tenant": tenant_of(first + i, tenants),
            "category": (first + i) % CATEGORIES,
        }
        for i, text in enumerate(texts)
    ]


LAYOUT = ownership.Layout("dense", FIELDS, "the retrieval layer", dynamic_ok=False)


def properties(settings: Settings) -> dict[str, str]:
    """loadgen's and this run's marks, set at creation (milvus-lite keeps no description)."""
    return {
        ownership.OWNER_PROPERTY[0]: ownership.OWNER_PROPERTY[1],
        ownership.RUN_PROPERTY: ownership.run_id(settings),
    }


@dataclass(frozen=True)
class Check:
    version: str
    claim: ownership.Claim


def check(client: MilvusClient, settings: Settings, needs: Iterable[tuple[str, capabilities.Version]]) -> Check:
    """Read-only: the server serves ``needs`` and the schema; the collection may be used (``ownership.claim``)."""
    version = str(client.get_server_version(timeout=settings.timeout))
    # the operations the run chose are named first; the schema's own need only when every operation is served
    capabilities.require(needs, version, where=settings.uri)
    capabilities.require([SCHEMA_NEEDS], version, where=settings.uri)
    return Check(version, ownership.claim(client, settings, collection_name(settings), LAYOUT))


def prepare(
    settings: Settings, corpus: Corpus, needs: Iterable[tuple[str, capabilities.Version]], *, progress: bool = True
) -> Prepared:
    """Check, then create (if needed), load and fill. Bad input or an old server: one line, nothing touched."""
    name = collection_name(settings)
    with setup_client(settings, "retrieval collection", name) as client:
        found = check(client, settings, list(needs))
        c = found.claim
        if c.create:
            ownership.clear_for_create(client, settings, c)
            client.create_collection(
                name,
                schema=schema(settings),
                index_params=index_params(client, settings),
                consistency_level=settings.consistency_level,
                properties=properties(settings),
                timeout=max(settings.timeout, 60),
            )
            ownership.created(settings, name)
        client.load_collection(name, timeout=max(settings.timeout, 60))
        have = _count(client, settings, name)
        if c.owned and have < len(corpus):  # a user's collection (--allow-foreign-collection) is never filled
            _fill(client, settings, corpus, start=have, progress=progress)
            have = _count(client, settings, name)
        return Prepared(name, c.owned, c.create, have, found.version)


def _count(client: MilvusClient, settings: Settings, name: str) -> int:
    from dataclasses import replace

    return count_rows(client, replace(settings, collection=name))


def _fill(client: MilvusClient, settings: Settings, corpus: Corpus, *, start: int, progress: bool) -> None:
    name, vectors = collection_name(settings), TextVectors(settings)
    with preparation.bar(name, len(corpus) - start, unit="docs", enabled=progress) as bar:
        for first in range(start, len(corpus), FILL_BATCH):
            last = min(first + FILL_BATCH, len(corpus))
            client.insert(name, rows(corpus, first, last, vectors, settings.tenants), timeout=max(settings.timeout, 60))
            bar.update(last - first)
    preparation.step(name, "flushing")
    client.flush(name, timeout=max(settings.timeout, 120))


def drop_if_owned(settings: Settings) -> bool:
    """At the end of a run: dropped if this run created it (see ``ownership.decide_release``)."""
    return release(settings, collection_name(settings)).dropped
