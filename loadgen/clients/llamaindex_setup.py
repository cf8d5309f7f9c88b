"""LlamaIndex: the layer's ``MilvusVectorStore`` (its own connection, no async client of the library's: see
``loadgen.clients.llamaindex``), its nodes, and once per test on the master its collection: validated, created by
the library (marked as loadgen's), filled and indexed, and dropped at the end when this run made it.

With ``--dataset`` the prefill is the dataset's base rows (node ``"lg-i"``, source document ``lg-dataset-*``): the
ground truth of its queries then holds for this collection too (``loadgen.workload.dataset_texts``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np
from pymilvus import AsyncMilvusClient

from loadgen.clients.lazy import lazy
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout
from loadgen.milvus import collection, held_rows, ownership, preparation, readiness
from loadgen.workload import dataset_texts, truth
from loadgen.workload.embeddings import embedder_for
from loadgen.workload.rows import CATEGORIES, WORDS, dataset_categories

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.vector_stores.milvus import MilvusVectorStore
else:  # imported on first use (see loadgen.clients.lazy)
    NodeRelationship, RelatedNodeInfo, TextNode = (lazy("llama_index.core.schema", n) for n in
                                                   ("NodeRelationship", "RelatedNodeInfo", "TextNode"))  # fmt: skip
    MilvusVectorStore = lazy("llama_index.vector_stores.milvus", "MilvusVectorStore")


def collection_name(settings: Settings) -> str:
    return f"{settings.collection}_llamaindex"


DATASET_DOC = "lg-dataset-"  # the source documents of a --dataset prefill's nodes
KEYS = held_rows.Keys(pk="id", vector="embedding", prefilled=f'doc_id like "{DATASET_DOC}%"',
                      key=lambda i: f"lg-{i}", beyond=None)  # fmt: skip


def new_alias() -> str:
    return f"loadgen-li-{uuid.uuid4().hex}"


def store_for(settings: Settings) -> MilvusVectorStore:
    """A store on its own connection; creates the collection (and index) if it does not exist."""
    index = {"index_type": settings.index_type, "metric_type": settings.metric_type}
    return MilvusVectorStore(
        **settings.client_kwargs(new_alias()),  # uri, token, timeout, TLS: the store passes the rest on to pymilvus
        collection_name=collection_name(settings),
        dim=settings.dim,
        overwrite=False,
        similarity_metric=settings.metric_type,
        index_config={**index, **collection.index_params(settings)},
        search_config={"metric_type": settings.metric_type, "params": collection.search_params(settings)},
        consistency_level=settings.consistency_level,
        use_async_client=False,  # see the module docstring: async clients are made on their loop, below
    )


async def attach_async_client(store: MilvusVectorStore, settings: Settings) -> None:
    """Give ``store`` an AsyncMilvusClient of its own on the running loop; its first call (the connection
    handshake, which has no deadline of its own) is bounded here."""
    client = AsyncMilvusClient(**settings.client_kwargs(new_alias()))
    store._async_milvusclient = client
    await asyncio.wait_for(client.has_collection(collection_name(settings), timeout=settings.timeout), settings.timeout)


def nodes(ids: list[str], embedder: Any, rng: np.random.Generator, doc_id: str | None = None) -> list[BaseNode]:
    """TextNodes with embeddings, metadata and one source document (``delete`` removes by it)."""
    doc_id = doc_id or f"lg-doc-{uuid.uuid4().hex}"
    texts = [f"{WORDS[i % len(WORDS)]} node {node_id}" for i, node_id in enumerate(ids)]
    vectors = embedder.embed(texts)
    cats = rng.integers(0, CATEGORIES, len(ids))
    return [
        TextNode(
            id_=node_id,
            text=text,
            embedding=vec,
            metadata={"category": int(cat)},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
        )
        for node_id, text, vec, cat in zip(ids, texts, vectors, cats, strict=True)
    ]


FILL_BATCH = 1000


LAYOUT = ownership.Layout("embedding", ("doc_id", "embedding"), "MilvusVectorStore", dynamic_ok=False)


def _fill_dataset(store: MilvusVectorStore, settings: Settings, *, start: int, progress: bool) -> None:
    """The dataset's base rows from ``start`` on, as nodes "lg-i" with the text that stands for them."""
    workload = truth.workload_for(settings)
    name = collection_name(settings)
    with preparation.bar(name, workload.dataset.count - start, unit="nodes", enabled=progress) as bar:
        for first, vectors in workload.base_from(start, FILL_BATCH):
            ids = list(range(first, first + len(vectors)))
            nodes: list[BaseNode] = [
                TextNode(id_=f"lg-{i}", text=dataset_texts.row_text(i), embedding=vec.tolist(),
                         metadata={"category": int(cat)},
                         relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"{DATASET_DOC}{first}")})
                for i, vec, cat in zip(ids, vectors, dataset_categories(ids, settings.seed), strict=True)
            ]  # fmt: skip
            with gevent.Timeout(max(settings.timeout, 60), CallTimeout("filling: no answer within the timeout")):
                store.add(nodes)
            bar.update(len(ids))


def _fill(store: MilvusVectorStore, settings: Settings, *, start: int, progress: bool) -> None:
    embedder, rng = embedder_for(settings), np.random.default_rng(settings.seed)
    name = collection_name(settings)
    with preparation.bar(name, settings.rows - start, unit="nodes", enabled=progress) as bar:
        for first in range(start, settings.rows, FILL_BATCH):
            ids = [f"lg-{i}" for i in range(first, min(first + FILL_BATCH, settings.rows))]
            with gevent.Timeout(max(settings.timeout, 60), CallTimeout("filling: no answer within the timeout")):
                store.add(nodes(ids, embedder, rng, doc_id=f"lg-fill-{first}"))
            bar.update(len(ids))


def check(settings: Settings) -> None:
    """What ``prepare`` would refuse, read-only."""
    collection.check_claim(settings, collection_name(settings), LAYOUT, "LlamaIndex collection")


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    """Validate, create (marked as loadgen's and this run's), load and fill ``<collection>_llamaindex`` and wait
    for its index; what may be created, written or reused is ``ownership.claim``'s decision. One-line errors."""
    name = collection_name(settings)
    collection.index_params(settings)
    collection.search_params(settings)  # validate before anything is created
    counting = dataclasses.replace(settings, collection=name)
    store: MilvusVectorStore | None = None
    with collection.setup_client(settings, "LlamaIndex collection", name) as client:
        try:
            version = str(client.get_server_version(timeout=settings.timeout))
            c = ownership.claim(client, settings, name, LAYOUT)
            if c.create:
                ownership.clear_for_create(client, settings, c)
                store = store_for(settings)  # the library creates the collection and its index
                # the library's schema has no description of ours: the ownership properties mark it
                ownership.stamp(client, settings, name)
            client.load_collection(name, timeout=max(settings.timeout, 60))
            rows, truth_rows, filled = collection.count_rows(client, counting), 0, False
            if settings.dataset:
                held, target, truth_rows = collection.dataset_fill_plan(client, settings, c, KEYS)
                if filled := held < target:
                    store = store or store_for(settings)
                    _fill_dataset(store, settings, start=held, progress=progress)
            elif filled := c.owned and rows < settings.rows:
                store = store or store_for(settings)
                _fill(store, settings, start=rows, progress=progress)
            if filled:
                preparation.step(name, "flushing")
                client.flush(name, timeout=max(settings.timeout, 120))
                rows = collection.count_rows(client, counting)
            readiness.wait_until_indexed(client, settings, name, "embedding", owned=c.owned)
            return collection.Prepared(name, c.owned, c.create, rows, version, truth_rows)
        finally:
            if store is not None:
                store.client.close()


def drop(settings: Settings) -> bool:
    """Drop ``<collection>_llamaindex`` if this run created it (see ``ownership``). Returns True if dropped."""
    return collection.release(settings, collection_name(settings)).dropped
