"""The retrieval collection: loadgen's schema for full-text, sparse, hybrid and multi-tenant workloads.

Fields: ``id`` (INT64 primary key: the document's position in the corpus), ``text`` (VARCHAR with an analyzer and
match index), ``dense`` (FLOAT_VECTOR), ``sparse`` (SPARSE_FLOAT_VECTOR filled by the server's BM25 function from
``text``), ``learned`` (SPARSE_FLOAT_VECTOR the client fills, standing in for a learned sparse model; metric IP),
``tenant`` (INT64 partition key: document i belongs to tenant i mod --tenants) and ``category`` (INT64, for grouping).
Created and filled once per run, marked as loadgen's like the other collections (``collection.MARKER`` and, because
milvus-lite does not keep descriptions, the ``OWNER_PROPERTY`` property); only ever dropped if loadgen created it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import capabilities
from loadgen.milvus.collection import (
    FILL_BATCH,
    MARKER,
    OWNER_PROPERTY,
    Prepared,
    connect,
    count_rows,
    exists,
    is_owned,
    server_message,
)
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


@dataclass(frozen=True)
class Check:
    version: str
    owned: bool | None  # None: the collection does not exist (or will be recreated)


def check(client: MilvusClient, settings: Settings, needs: Iterable[tuple[str, capabilities.Version]]) -> Check:
    """Read-only: the server can serve the schema and ``needs``; an existing collection is loadgen's, with the
    fields and dimension this run writes."""
    version = str(client.get_server_version(timeout=settings.timeout))
    # the operations the run chose are named first; the schema's own need only when every operation is served
    capabilities.require(needs, version, where=settings.uri)
    capabilities.require([SCHEMA_NEEDS], version, where=settings.uri)
    name = collection_name(settings)
    if not exists(client, settings, name):
        return Check(version, None)
    desc = client.describe_collection(name, timeout=settings.timeout)
    if not is_owned(desc):
        raise LoadgenError(f"collection {name!r} exists and was not created by loadgen; choose another --collection")
    if settings.recreate:
        return Check(version, None)
    fields = {f["name"]: f for f in desc.get("fields", [])}
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise LoadgenError(f"collection {name!r} lacks {', '.join(missing)}; pass --recreate to rebuild it")
    dim = int(fields["dense"].get("params", {}).get("dim", 0))
    if dim != settings.dim:
        raise LoadgenError(f"collection {name!r} has dim {dim}, --dim is {settings.dim}; pass --recreate")
    return Check(version, True)


def prepare(
    settings: Settings, corpus: Corpus, needs: Iterable[tuple[str, capabilities.Version]], *, progress: bool = True
) -> Prepared:
    """Check, then create (if needed), load and fill. Bad input or an old server: one line, nothing touched."""
    needs = list(needs)
    name = collection_name(settings)
    client = connect(settings)
    try:
        found = check(client, settings, needs)
        created = found.owned is None
        if created:
            if client.has_collection(name, timeout=settings.timeout):  # --recreate of our own
                client.drop_collection(name, timeout=settings.timeout)
            client.create_collection(
                name,
                schema=schema(settings),
                index_params=index_params(client, settings),
                consistency_level=settings.consistency_level,
                properties=dict([OWNER_PROPERTY]),
                timeout=max(settings.timeout, 60),
            )
        client.load_collection(name, timeout=max(settings.timeout, 60))
        have = _count(client, settings, name)
        if have < len(corpus):
            _fill(client, settings, corpus, start=have, progress=progress)
            have = _count(client, settings, name)
        return Prepared(name, True, created, have, found.version)
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"Milvus refused the retrieval collection setup: {server_message(exc)}") from None
    finally:
        client.close()


def _count(client: MilvusClient, settings: Settings, name: str) -> int:
    from dataclasses import replace

    return count_rows(client, replace(settings, collection=name))


def _fill(client: MilvusClient, settings: Settings, corpus: Corpus, *, start: int, progress: bool) -> None:
    from tqdm import tqdm

    name, vectors = collection_name(settings), TextVectors(settings)
    with tqdm(
        total=len(corpus) - start, desc=f"filling {name}", unit="docs", disable=not progress, file=sys.stderr
    ) as bar:
        for first in range(start, len(corpus), FILL_BATCH):
            last = min(first + FILL_BATCH, len(corpus))
            client.insert(name, rows(corpus, first, last, vectors, settings.tenants), timeout=max(settings.timeout, 60))
            bar.update(last - first)
    client.flush(name, timeout=max(settings.timeout, 120))


def drop_if_owned(settings: Settings) -> bool:
    name = collection_name(settings)
    client = connect(settings)
    try:
        if not client.has_collection(name, timeout=settings.timeout):
            return False
        if not is_owned(client.describe_collection(name, timeout=settings.timeout)):
            return False
        client.drop_collection(name, timeout=settings.timeout)
        return True
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"could not drop {name!r}: {server_message(exc)}") from None
    finally:
        client.close()
