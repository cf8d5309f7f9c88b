"""LlamaIndex: ``MilvusVectorStore`` (llama-index-vector-stores-milvus 1.2.0) and ``VectorStoreIndex``.

What 1.2.0 does, and how this adapter lives with it (checked against Milvus 2.3.5):
- ``MilvusVectorStore(use_async_client=True)`` builds an ``AsyncMilvusClient`` in its constructor, which needs a
  running loop ("Cannot create async connection: no running event loop", llama_index issue 20313), and it drops
  any ``alias`` for that client, so every async store on one loop shares one connection: closing one user's store
  would close it for all. So every store here is built with ``use_async_client=False`` and its own ``alias``, and
  async stores get an ``AsyncMilvusClient`` of their own (own alias), made on the loop that awaits it.
- The store passes no ``timeout`` to Milvus except through ``delete_nodes(**kwargs)``; the client-level
  ``timeout`` only bounds connecting. Sync calls are bounded with ``gevent.Timeout``, async ones by the user's
  ``asyncio.timeout`` (``timing.ameasure``).
- ``VectorStoreIndex.from_documents(..., use_async=True)`` runs its inserts through llama-index's
  ``asyncio_run``: ``get_event_loop()``, then ``run_until_complete`` if that loop is idle, else a fresh loop in a
  new thread. A sync store has no async client (AssertionError "Async Client should be non-null ..."); inside a
  coroutine the fresh loop awaits a client bound to the app's loop (MilvusException "... attached to a different
  loop") while blocking that loop. It works only on a thread whose current loop is idle and owns the store's async
  client. A small pool of ingest threads per process (``_IngestPool``, not one per user) is laid out exactly so,
  and both flavours run the real ``from_documents(use_async=True)`` there; the timed span adds one thread hand-off
  each way.
- ``query(..., string_expr=...)`` is ignored by the library when ``filters`` are also given, so
  ``query_filtered`` sends ``--filter`` alone as ``string_expr`` when it is set, else a ``MetadataFilters``.
- It passes no ``consistency_level`` to search (pymilvus 2.6 then sends Strong plus "use the collection's
  default"). On Milvus 2.3.5, under concurrent writes, such a search with output fields (llama-index asks for
  ``*``) takes ~200 ms, like a Strong one; with ``id`` only or an explicit Bounded, ~3 ms. Measured as it is.

With ``--dataset`` the prefill is the dataset's base rows (node ``"lg-i"``, source document ``lg-dataset-*``) and
``query`` and ``retrieve`` run its queries, scored for recall (``loadgen.workload.dataset_texts``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.monkey
import numpy as np

from loadgen.clients import layer_weights
from loadgen.clients.base import Adapter, Operation, Outcome, Skip, table
from loadgen.clients.lazy import lazy
from loadgen.clients.llamaindex_setup import (
    attach_async_client,
    check,
    collection_name,
    drop,
    nodes,
    prepare,
    store_for,
)
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout
from loadgen.workload import dataset_texts, truth
from loadgen.workload.embeddings import embedder_for, llamaindex_embedding
from loadgen.workload.rows import CATEGORIES, WORDS

if TYPE_CHECKING:
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery
    from llama_index.vector_stores.milvus import MilvusVectorStore
else:  # imported on first use (see loadgen.clients.lazy)
    Document, StorageContext, VectorStoreIndex = (lazy("llama_index.core", n) for n in
                                                  ("Document", "StorageContext", "VectorStoreIndex"))  # fmt: skip
    SentenceSplitter = lazy("llama_index.core.node_parser", "SentenceSplitter")
    NodeRelationship, RelatedNodeInfo, TextNode = (lazy("llama_index.core.schema", n) for n in
                                                   ("NodeRelationship", "RelatedNodeInfo", "TextNode"))  # fmt: skip
    MetadataFilter, MetadataFilters, VectorStoreQuery = (
        lazy("llama_index.core.vector_stores.types", n)
        for n in ("MetadataFilter", "MetadataFilters", "VectorStoreQuery")
    )
    MilvusVectorStore = lazy("llama_index.vector_stores.milvus", "MilvusVectorStore")

_instances = itertools.count(1)
# a real OS queue: gevent patches ``queue``, and the ingest threads are not greenlets
_OSQueue: Any = gevent.monkey.get_original("queue", "SimpleQueue")
_Done = Callable[[Any, BaseException | None], object]
INGEST_THREADS = 2  # from_documents jobs in flight per process; more only share the same two cores


def _settle_future(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.cancelled():  # the caller timed out
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class _IngestPool:
    """A few OS threads, each with an idle current event loop and a store whose async client belongs to that loop:
    where ``from_documents(use_async=True)`` can run (llama-index's ``asyncio_run`` reuses the idle loop). One pool
    per process and settings, shared by every user; the stores' sync constructors run in the caller's greenlet."""

    _pools: dict[tuple[Any, ...], _IngestPool] = {}  # noqa: RUF012 - one per process and collection

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jobs = _OSQueue()
        self.stores = [store_for(settings) for _ in range(INGEST_THREADS)]
        self._threads = [threading.Thread(target=self._run, args=(st,), name="loadgen-li-ingest", daemon=True)
                         for st in self.stores]  # fmt: skip
        for thread in self._threads:
            thread.start()
        atexit.register(self.close)

    @classmethod
    def get(cls, settings: Settings) -> _IngestPool:
        key = (settings.uri, collection_name(settings), settings.dim, settings.timeout, settings.embedding)
        pool = cls._pools.get(key)
        if pool is None:
            pool = cls._pools[key] = cls(settings)
        return pool

    def _run(self, store: MilvusVectorStore) -> None:
        # the unpatched epoll selector, as in runtime.AsyncBridge: gevent's would need a hub in this thread
        loop = asyncio.SelectorEventLoop(gevent.monkey.get_original("selectors", "EpollSelector")())
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(attach_async_client(store, self.settings))
        except BaseException as exc:  # every job of this thread then says why
            failed: BaseException | None = exc
        else:
            failed = None
        while (job := self._jobs.get()) is not None:
            fn, ctx, done = job
            try:
                if failed is not None:
                    raise failed
                result = ctx.run(fn, store)  # the caller's context: its embedding meter follows into this thread
            except BaseException as exc:  # handed back to the caller, who reports it
                done(None, exc)
            else:
                done(result, None)
        if store.aclient is not None:
            loop.run_until_complete(store.aclient.close())
        store.client.close()
        loop.close()

    def _submit(self, fn: Callable[[MilvusVectorStore], Any], done: _Done) -> None:
        self._jobs.put((fn, contextvars.copy_context(), done))

    def run_sync(self, fn: Callable[[MilvusVectorStore], Any], timeout: float) -> Any:
        """From a greenlet: run ``fn(store)`` on an ingest thread; the greenlet sleeps, the hub keeps going."""
        waiter: gevent.event.AsyncResult = gevent.event.AsyncResult()
        hub_loop = gevent.get_hub().loop
        self._submit(
            fn, lambda r, e: hub_loop.run_callback_threadsafe(waiter.set_exception if e else waiter.set, e or r)
        )
        try:
            return waiter.get(timeout=timeout)
        except gevent.Timeout:
            raise CallTimeout(f"no answer within {timeout:g} s") from None

    async def run_async(self, fn: Callable[[MilvusVectorStore], Any]) -> Any:
        """From a coroutine: run ``fn(store)`` on an ingest thread without blocking the calling loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._submit(fn, lambda r, e: loop.call_soon_threadsafe(_settle_future, fut, r, e))
        return await fut

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class Store:
    """One user's ``MilvusVectorStore`` (and the index's retriever over it), and the documents and nodes it added:
    the only ones its deletes remove."""

    store: MilvusVectorStore
    use_async = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self.embedder = embedder_for(settings)
        self.embed_model = llamaindex_embedding(self.embedder)
        self.rng = np.random.default_rng(settings.seed + next(_instances))
        self.own_docs: deque[str] = deque(maxlen=100_000)
        self.own_nodes: deque[str] = deque(maxlen=100_000)
        self.workload = truth.workload_for(settings) if settings.dataset else None
        # ingestion threads only when from_documents will run: they cost threads and connections
        wants = layer_weights(settings.weights, {n: op.weight for n, op in OPERATIONS.items()}, fanout=False)
        self.ingest = _IngestPool.get(settings) if wants["from_documents"] > 0 else None
        # a whitespace tokenizer: llama-index's default (tiktoken) would be another cost in the timed span
        self.splitter = SentenceSplitter(chunk_size=512, chunk_overlap=0, tokenizer=str.split)
        self.store = store_for(settings)
        index = VectorStoreIndex.from_vector_store(self.store, embed_model=self.embed_model)  # no Milvus call
        self.retriever = index.as_retriever(similarity_top_k=settings.top_k)

    def text(self) -> str:
        n = int(self.rng.integers(0, max(self.settings.rows, 1)))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def query_text(self) -> tuple[str, int | None]:
        """A search's text, and the dataset query it stands for (None without --dataset: nothing to score)."""
        if self.workload is None:
            return self.text(), None
        j = int(self.rng.integers(0, len(self.workload.queries)))
        return dataset_texts.query_text(j), j

    def query(self, filters: MetadataFilters | None = None) -> VectorStoreQuery:
        emb = self.embedder.embed([self.text()])[0]
        return VectorStoreQuery(query_embedding=emb, similarity_top_k=self.settings.top_k, filters=filters)

    def scored_query(self) -> tuple[Any, ...]:
        """``query``'s inputs: the query, no extra arguments, and the dataset query it runs (or None)."""
        text, j = self.query_text()
        emb = self.embedder.embed([text])[0]
        return VectorStoreQuery(query_embedding=emb, similarity_top_k=self.settings.top_k), None, j

    def from_documents(self, docs: list[Document], store: MilvusVectorStore) -> int:
        """On an ingest thread: the library's call, as a sync app with use_async=True makes it."""
        VectorStoreIndex.from_documents(
            docs,
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=self.embed_model,
            transformations=[self.splitter],
            use_async=True,
        )
        return len(docs)  # the index keeps no ids when the store keeps the text; short docs: one node each


# ---- inputs (untimed) ---------------------------------------------------------------------------------------------
def _add_in(s: Store) -> tuple[Any, ...]:
    return (nodes([f"lg-node-{uuid.uuid4().hex}" for _ in range(s.settings.batch_size)], s.embedder, s.rng),)


def _filtered_in(s: Store) -> tuple[Any, ...]:
    if s.settings.filter:  # the library drops string_expr when filters are given: send it alone
        return s.query(), {"string_expr": s.settings.filter}
    category = int(s.rng.integers(0, CATEGORIES))
    return s.query(MetadataFilters(filters=[MetadataFilter(key="category", value=category)])), {}


def _delete_in(s: Store) -> tuple[Any, ...]:
    if not s.own_docs:
        raise Skip("no documents of this user's own to delete yet")
    return (s.own_docs.popleft(),)


def _delete_nodes_in(s: Store) -> tuple[Any, ...]:
    own = [s.own_nodes.popleft() for _ in range(min(s.settings.batch_size, len(s.own_nodes)))]
    if not own:
        raise Skip("no nodes of this user's own to delete yet")
    return own, {"timeout": s.timeout}  # the one call whose kwargs reach pymilvus: it can carry a deadline


# ---- calls (timed) ------------------------------------------------------------------------------------------------
def _method(owner: str, sync: str, asyn: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The store's (or the retriever's) sync method, bounded by a gevent deadline (the store passes no timeout to
    Milvus), and its async twin (bounded by the user's own deadline)."""

    def call(s: Store, arg: Any, kw: dict[str, Any] | None = None, _query_index: int | None = None) -> Any:
        with gevent.Timeout(s.timeout, CallTimeout(f"no answer within {s.timeout:g} s")):
            return getattr(getattr(s, owner), sync)(arg, **(kw or {}))

    def acall(s: Store, arg: Any, kw: dict[str, Any] | None = None, _query_index: int | None = None) -> Any:
        return getattr(getattr(s, owner), asyn)(arg, **(kw or {}))

    return call, acall


def _ingest_sync(s: Store, docs: list[Document]) -> int:
    assert s.ingest is not None
    return int(s.ingest.run_sync(lambda store: s.from_documents(docs, store), s.timeout))


async def _ingest_async(s: Store, docs: list[Document]) -> int:
    # the same sync library call as the sync flavour, on an ingest thread: awaiting it leaves loadgen's loop free
    # for the other users (llama-index's own asyncio_run would block it, then fail)
    assert s.ingest is not None
    return int(await s.ingest.run_async(lambda store: s.from_documents(docs, store)))


def _ids(_s: Store, _inputs: tuple[Any, ...], result: Any) -> Outcome:
    return Outcome(len(result.ids or []))


def _scored(s: Store, inputs: tuple[Any, ...], ids: list[str]) -> Outcome:
    """Hits, scored against the dataset's ground truth when the search ran one of its queries."""
    j = inputs[2] if len(inputs) > 2 else None
    if s.workload is None or j is None:
        return Outcome(len(ids))
    return Outcome(len(ids), s.workload.recall(j, [dataset_texts.hit_index(i, "lg-") for i in ids]))


def _queried(s: Store, inputs: tuple[Any, ...], result: Any) -> Outcome:
    return _scored(s, inputs, list(result.ids or []))


def _retrieved(s: Store, inputs: tuple[Any, ...], result: Any) -> Outcome:
    return _scored(s, inputs, [hit.node.node_id for hit in result or []])


def _retrieve_in(s: Store) -> tuple[Any, ...]:
    text, j = s.query_text()
    return text, None, j


def _asked(_s: Store, inputs: tuple[Any, ...], result: Any) -> Outcome:
    """Deletes return None: the ids or the ref doc asked for."""
    arg = inputs[0]
    return Outcome(len(result) if result is not None else len(arg) if isinstance(arg, list) else 1)


def _added(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
    if ok:
        s.own_docs.extend(dict.fromkeys(node.ref_doc_id for node in inputs[0]))
        s.own_nodes.extend(node.node_id for node in inputs[0])


def _ingested(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
    if ok:
        s.own_docs.extend(doc.doc_id for doc in inputs[0])


def _op(name: str, weight: int, kind: Any, inputs: Any, methods: tuple[str, str, str], **kw: Any) -> Operation:
    call, acall = _method(*methods)
    return Operation(name, weight, kind, inputs, call, acall, **kw)


OPERATIONS = table(
    _op("add", 2, "write", _add_in, ("store", "add", "async_add"), done=_added, async_label="async_add",
        server="Insert"),
    _op("query", 10, "read", lambda s: s.scored_query(), ("store", "query", "aquery"), outcome=_queried,
        search=True, server="Search"),
    _op("query_filtered", 2, "read", _filtered_in, ("store", "query", "aquery"), outcome=_ids,
        label="query[filtered]", server="Search"),
    _op("delete", 1, "write", _delete_in, ("store", "delete", "adelete"), outcome=_asked, server="Delete"),
    _op("delete_nodes", 1, "write", _delete_nodes_in, ("store", "delete_nodes", "adelete_nodes"), outcome=_asked,
        server="Delete"),
    _op("get_nodes", 2, "read", lambda s: ([f"lg-{int(i)}" for i in s.rng.integers(0, max(s.settings.rows, 1),
        s.settings.batch_size)],), ("store", "get_nodes", "aget_nodes"), server="Query"),
    Operation("from_documents", 1, "write",
              lambda s: ([_document(s.text(), s.rng) for _ in range(s.settings.batch_size)],),
              _ingest_sync, _ingest_async, outcome=lambda s, i, n: Outcome(int(n)), done=_ingested,
              label="VectorStoreIndex.from_documents", async_label="VectorStoreIndex.from_documents",
              server="Insert"),
    _op("retrieve", 2, "read", _retrieve_in, ("retriever", "retrieve", "aretrieve"), outcome=_retrieved,
        server="Search"),
)  # fmt: skip


# ---- the store's life -----------------------------------------------------------------------------------------------
def _open(settings: Settings, _use_async: bool) -> Store:
    return Store(settings)  # the store's constructor makes a few sync calls: here, in the user's greenlet


async def _attach(s: Store) -> None:
    await attach_async_client(s.store, s.settings)


def _close(s: Store) -> None:
    s.store.client.close()


async def _aclose(s: Store) -> None:
    try:
        if s.store.aclient is not None:
            await s.store.aclient.close()
    finally:
        s.store.client.close()


def _document(text: str, rng: np.random.Generator) -> Document:
    return Document(
        text=text, id_=f"lg-doc-{uuid.uuid4().hex}", metadata={"category": int(rng.integers(0, CATEGORIES))}
    )


ADAPTER = Adapter(
    layer="llamaindex", operations=OPERATIONS, open=_open, close=_close, attach=_attach, aclose=_aclose,
    prepare=prepare, drop=drop, check=check,
    libraries=("llama_index.core", "llama_index.core.embeddings", "llama_index.core.node_parser",
               "llama_index.core.schema", "llama_index.core.vector_stores.types", "llama_index.vector_stores.milvus"),
)  # fmt: skip
