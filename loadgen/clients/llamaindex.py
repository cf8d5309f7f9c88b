"""LlamaIndex: ``MilvusVectorStore`` (llama-index-vector-stores-milvus 1.2.0) and ``VectorStoreIndex``.

What 1.2.0 does, and how this adapter lives with it (checked against Milvus 2.3.5):
- ``MilvusVectorStore(use_async_client=True)`` builds an ``AsyncMilvusClient`` in its constructor, which needs a
  running loop ("Cannot create async connection: no running event loop", llama_index issue 20313), and it drops
  any ``alias`` for that client, so every async store on one loop shares one connection: closing one user's store
  would close it for all. So every store here is built with ``use_async_client=False`` and its own ``alias``, and
  async stores get an ``AsyncMilvusClient`` of their own (own alias), made on the loop that awaits it.
- The store passes no ``timeout`` to Milvus except through ``delete_nodes(**kwargs)``; the client-level
  ``timeout`` only bounds connecting. Sync calls are bounded with ``gevent.Timeout``, async ones by the user's
  ``asyncio.wait_for`` (``timing.ameasure``).
- ``VectorStoreIndex.from_documents(..., use_async=True)`` runs its inserts through llama-index's
  ``asyncio_run``: ``get_event_loop()``, then ``run_until_complete`` if that loop is idle, else a fresh loop in a
  new thread. A sync store has no async client (AssertionError "Async Client should be non-null ..."); inside a
  coroutine the fresh loop awaits a client bound to the app's loop (MilvusException "... attached to a different
  loop") while blocking that loop. It works only on a thread whose current loop is idle and owns the store's async
  client. Each store therefore gets an ingest thread (``_Ingest``) laid out exactly so, and both flavours run the
  real ``from_documents(use_async=True)`` there; the timed span adds one thread hand-off each way.
- ``query(..., string_expr=...)`` is ignored by the library when ``filters`` are also given, so
  ``query_filtered`` sends ``--filter`` alone as ``string_expr`` when it is set, else a ``MetadataFilters``.
- It passes no ``consistency_level`` to search (pymilvus 2.6 then sends Strong plus "use the collection's
  default"). On Milvus 2.3.5, under concurrent writes, such a search with output fields (llama-index asks for
  ``*``) takes ~200 ms, like a Strong one; with ``id`` only or an explicit Bounded, ~3 ms. Measured as it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import gevent
import gevent.event
import gevent.monkey
import numpy as np
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery
from llama_index.vector_stores.milvus import MilvusVectorStore
from pymilvus import AsyncMilvusClient, MilvusClient, MilvusException

from loadgen.clients import layer_weights
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.milvus import collection
from loadgen.workload.embeddings import embedder_for, llamaindex_embedding
from loadgen.workload.rows import CATEGORIES, WORDS

_instances = itertools.count(1)
# op -> (sync request name, async request name, sync method, async method); retrieve is the retriever's
_METHODS: dict[str, tuple[str, str, str, str]] = {
    "add": ("add", "async_add", "add", "async_add"),
    "query": ("query", "aquery", "query", "aquery"),
    "query_filtered": ("query[filtered]", "aquery[filtered]", "query", "aquery"),
    "delete": ("delete", "adelete", "delete", "adelete"),
    "delete_nodes": ("delete_nodes", "adelete_nodes", "delete_nodes", "adelete_nodes"),
    "get_nodes": ("get_nodes", "aget_nodes", "get_nodes", "aget_nodes"),
    "from_documents": ("VectorStoreIndex.from_documents", "VectorStoreIndex.from_documents", "", ""),
    "retrieve": ("retrieve", "aretrieve", "retrieve", "aretrieve"),
}
# a real OS queue: gevent patches ``queue``, and the ingest thread is not a greenlet
_OSQueue: Any = gevent.monkey.get_original("queue", "SimpleQueue")
_Done = Callable[[Any, BaseException | None], object]


def collection_name(settings: Settings) -> str:
    return f"{settings.collection}_llamaindex"


def _alias() -> str:
    return f"loadgen-li-{uuid.uuid4().hex}"


def _store(settings: Settings) -> MilvusVectorStore:
    """A store on its own connection; creates the collection (and index) if it does not exist."""
    index = {"index_type": settings.index_type, "metric_type": settings.metric_type}
    return MilvusVectorStore(
        **settings.client_kwargs(_alias()),  # uri, token, timeout, TLS: the store passes the rest on to pymilvus
        collection_name=collection_name(settings),
        dim=settings.dim,
        overwrite=False,
        similarity_metric=settings.metric_type,
        index_config={**index, **collection.index_params(settings)},
        search_config={"metric_type": settings.metric_type, "params": collection.search_params(settings)},
        consistency_level=settings.consistency_level,
        use_async_client=False,  # see the module docstring: async clients are made on their loop, below
    )


async def _attach_async_client(store: MilvusVectorStore, settings: Settings) -> None:
    """Give ``store`` an AsyncMilvusClient of its own on the running loop; its first call (the connection
    handshake, which has no deadline of its own) is bounded here."""
    client = AsyncMilvusClient(**settings.client_kwargs(_alias()))
    store._async_milvusclient = client
    await asyncio.wait_for(client.has_collection(collection_name(settings), timeout=settings.timeout), settings.timeout)


def _settle_future(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.cancelled():  # the caller timed out
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class _Ingest:
    """An OS thread whose current event loop is idle, with a store whose async client belongs to that loop: where
    ``from_documents(use_async=True)`` can run (llama-index's ``asyncio_run`` reuses the idle loop)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.store = _store(settings)
        self._jobs = _OSQueue()
        threading.Thread(target=self._run, name="loadgen-li-ingest", daemon=True).start()

    def _run(self) -> None:
        # the unpatched epoll selector, as in runtime.AsyncBridge: gevent's would need a hub in this thread
        loop = asyncio.SelectorEventLoop(gevent.monkey.get_original("selectors", "EpollSelector")())
        asyncio.set_event_loop(loop)
        while (job := self._jobs.get()) is not None:
            fn, ctx, done = job
            try:
                result = ctx.run(fn)  # the caller's context: its embedding meter follows into this thread
            except BaseException as exc:  # handed back to the caller, who reports it
                done(None, exc)
            else:
                done(result, None)
        loop.close()

    def _submit(self, fn: Callable[[], Any], done: _Done) -> None:
        self._jobs.put((fn, contextvars.copy_context(), done))

    def run_sync(self, fn: Callable[[], Any], timeout: float) -> Any:
        """From a greenlet: run ``fn`` on the ingest thread; the greenlet sleeps, the hub keeps going."""
        waiter: gevent.event.AsyncResult = gevent.event.AsyncResult()
        hub_loop = gevent.get_hub().loop
        self._submit(
            fn, lambda r, e: hub_loop.run_callback_threadsafe(waiter.set_exception if e else waiter.set, e or r)
        )
        try:
            return waiter.get(timeout=timeout)
        except gevent.Timeout:
            raise CallTimeout(f"no answer within {timeout:g} s") from None

    async def run_async(self, fn: Callable[[], Any]) -> Any:
        """From a coroutine: run ``fn`` on the ingest thread without blocking the calling loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._submit(fn, lambda r, e: loop.call_soon_threadsafe(_settle_future, fut, r, e))
        return await fut

    def attach(self) -> None:  # an ingest job: the store's async client, made on this thread's loop
        asyncio.get_event_loop().run_until_complete(_attach_async_client(self.store, self.s))

    def close(self) -> None:  # an ingest job, the last one
        try:
            if self.store.aclient is not None:
                asyncio.get_event_loop().run_until_complete(self.store.aclient.close())
        finally:
            self.store.client.close()
            self._jobs.put(None)


class _Common:
    """Inputs and bookkeeping shared by both flavours."""

    operations: ClassVar[dict[str, int]] = {
        "add": 2, "query": 10, "query_filtered": 2, "delete": 1, "delete_nodes": 1, "get_nodes": 2,
        "from_documents": 1, "retrieve": 2,
    }  # fmt: skip
    fanout_op: ClassVar[str] = "query"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.embedder = embedder_for(settings)
        self.embed_model = llamaindex_embedding(self.embedder)
        self.rng = np.random.default_rng(settings.seed + next(_instances))
        self.own_docs: deque[str] = deque(maxlen=100_000)  # ref_doc_ids this client added: what delete removes
        self.own_nodes: deque[str] = deque(maxlen=100_000)  # node ids this client added: what delete_nodes removes
        # ingest thread only when from_documents will run: it costs a thread and two connections
        self.wants_ingest = layer_weights(settings.weights, self.operations, fanout=False)["from_documents"] > 0
        self.ingest: _Ingest | None = None
        # a whitespace tokenizer: llama-index's default (tiktoken) would be another cost in the timed span
        self.splitter = SentenceSplitter(chunk_size=512, chunk_overlap=0, tokenizer=str.split)

    def _build(self, store: MilvusVectorStore) -> None:
        self.store = store
        index = VectorStoreIndex.from_vector_store(store, embed_model=self.embed_model)  # no Milvus call
        self.retriever = index.as_retriever(similarity_top_k=self.s.top_k)

    def _text(self) -> str:
        n = int(self.rng.integers(0, max(self.s.rows, 1)))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def _query(self, filters: MetadataFilters | None = None) -> VectorStoreQuery:
        emb = self.embedder.embed([self._text()])[0]
        return VectorStoreQuery(query_embedding=emb, similarity_top_k=self.s.top_k, filters=filters)

    def inputs(self, op: str) -> tuple[Any, ...]:  # noqa: PLR0911 - one branch per operation
        n = self.s.batch_size
        if op == "add":
            return (_nodes([f"lg-node-{uuid.uuid4().hex}" for _ in range(n)], self.embedder, self.rng),)
        if op == "query":
            return (self._query(),)
        if op == "query_filtered":
            if self.s.filter:  # the library drops string_expr when filters are given: send it alone
                return (self._query(), {"string_expr": self.s.filter})
            category = int(self.rng.integers(0, CATEGORIES))
            return (self._query(MetadataFilters(filters=[MetadataFilter(key="category", value=category)])), {})
        if op == "delete":
            return (self.own_docs.popleft() if self.own_docs else f"lg-missing-{uuid.uuid4().hex}",)
        if op == "delete_nodes":
            own = [self.own_nodes.popleft() for _ in range(min(n, len(self.own_nodes)))]
            # the one call whose kwargs reach pymilvus: it can carry a deadline
            return (own or [f"lg-missing-{uuid.uuid4().hex}" for _ in range(n)], {"timeout": self.s.timeout})
        if op == "get_nodes":
            return ([f"lg-{int(i)}" for i in self.rng.integers(0, max(self.s.rows, 1), n)],)
        if op == "from_documents":
            return ([_document(self._text(), self.rng) for _ in range(n)],)
        if op == "retrieve":
            return (self._text(),)
        raise ValueError(f"unknown llamaindex operation {op!r}")

    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None:
        if not ok:
            return
        if op == "add":
            self.own_docs.extend(dict.fromkeys(node.ref_doc_id for node in inputs[0]))
            self.own_nodes.extend(node.node_id for node in inputs[0])
        elif op == "from_documents":
            self.own_docs.extend(doc.doc_id for doc in inputs[0])

    def _from_documents(self, docs: list[Document]) -> int:
        """Runs on the ingest thread: the library's call, as a sync app with use_async=True makes it."""
        assert self.ingest is not None
        VectorStoreIndex.from_documents(
            docs,
            storage_context=StorageContext.from_defaults(vector_store=self.ingest.store),
            embed_model=self.embed_model,
            transformations=[self.splitter],
            use_async=True,
        )
        return len(docs)  # the index keeps no ids when the store keeps the text; short docs: one node each


def _nodes(ids: list[str], embedder: Any, rng: np.random.Generator, doc_id: str | None = None) -> list[BaseNode]:
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


def _document(text: str, rng: np.random.Generator) -> Document:
    return Document(
        text=text, id_=f"lg-doc-{uuid.uuid4().hex}", metadata={"category": int(rng.integers(0, CATEGORIES))}
    )


def _count(op: str, result: Any, arg: Any) -> int:
    """How much came back: ids added, nodes returned; deletes return None, so: the ids or ref docs asked for."""
    if op in ("query", "query_filtered"):
        return len(result.ids or [])
    if result is None:
        return len(arg) if isinstance(arg, list) else 1
    return len(result)


class LlamaIndexStore(_Common):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._build(_store(settings))
        if self.wants_ingest:
            self.ingest = _Ingest(settings)
            self.ingest.run_sync(self.ingest.attach, settings.timeout + 1)

    def request_name(self, op: str) -> str:
        return _METHODS[op][0]

    def call(self, op: str, *inputs: Any) -> int:
        if op == "from_documents":
            assert self.ingest is not None
            return int(self.ingest.run_sync(lambda: self._from_documents(inputs[0]), self.s.timeout))
        method = getattr(self.retriever if op == "retrieve" else self.store, _METHODS[op][2])
        # the store passes no deadline to Milvus: bound the whole call (grpc is gevent-cooperative)
        with gevent.Timeout(self.s.timeout, CallTimeout(f"no answer within {self.s.timeout:g} s")):
            return _count(op, method(inputs[0], **(inputs[1] if len(inputs) > 1 else {})), inputs[0])

    def close(self) -> None:
        try:
            if self.ingest is not None:
                self.ingest.run_sync(self.ingest.close, self.s.timeout)
        finally:
            self.store.client.close()


class AsyncLlamaIndexStore(_Common):
    """Construct on the running loop (``await AsyncLlamaIndexStore.open(settings)``).

    The store's constructor makes a few sync Milvus calls (list collections and indexes) on the loop thread; they
    happen once per user, at start, outside any measurement."""

    @classmethod
    async def open(cls, settings: Settings) -> AsyncLlamaIndexStore:
        self = cls(settings)
        self._build(_store(settings))
        await _attach_async_client(self.store, settings)
        if self.wants_ingest:
            self.ingest = _Ingest(settings)
            await asyncio.wait_for(self.ingest.run_async(self.ingest.attach), settings.timeout + 1)
        return self

    def request_name(self, op: str) -> str:
        return _METHODS[op][1]

    async def call(self, op: str, *inputs: Any) -> int:
        if op == "from_documents":
            # the same sync library call as the sync flavour, on the ingest thread: awaiting it here leaves this
            # loop free for the other users (llama-index's own asyncio_run would block it, then fail)
            assert self.ingest is not None
            return int(await self.ingest.run_async(lambda: self._from_documents(inputs[0])))
        method = getattr(self.retriever if op == "retrieve" else self.store, _METHODS[op][3])
        return _count(op, await method(inputs[0], **(inputs[1] if len(inputs) > 1 else {})), inputs[0])

    async def close(self) -> None:
        try:
            if self.ingest is not None:
                await asyncio.wait_for(self.ingest.run_async(self.ingest.close), self.s.timeout)
            if self.store.aclient is not None:
                await self.store.aclient.close()
        finally:
            self.store.client.close()


# ---- once per test, on the master --------------------------------------------------------------------------------
FILL_BATCH = 1000


def _inspect(client: MilvusClient, settings: Settings, name: str) -> bool | None:
    """None if the collection is absent (or was ours and is dropped for --recreate), else whether loadgen owns it."""
    t = settings.timeout
    if not collection.exists(client, settings, name):
        return None
    desc = client.describe_collection(name, timeout=t)
    owned = collection.is_owned(desc)
    if settings.recreate:
        if not owned:
            raise LoadgenError(f"--recreate refused: collection {name!r} was not created by loadgen")
        client.drop_collection(name, timeout=t)
        return None
    if not owned and not settings.allow_foreign_collection:
        raise LoadgenError(
            f"collection {name!r} exists and was not created by loadgen; choose another --collection, "
            "or pass --allow-foreign-collection to write into it"
        )
    fields = {f["name"]: f for f in desc.get("fields", [])}
    if "embedding" not in fields or "doc_id" not in fields:
        raise LoadgenError(f"collection {name!r} lacks the fields MilvusVectorStore writes (id, doc_id, embedding)")
    dim = int(fields["embedding"].get("params", {}).get("dim", 0))
    if dim != settings.dim:
        hint = "pass --recreate to rebuild it" if owned else "choose --dim to match or another --collection"
        raise LoadgenError(f"dimension mismatch: collection {name!r} has dim {dim}, --dim is {settings.dim}; {hint}")
    return owned


def _fill(store: MilvusVectorStore, settings: Settings, *, start: int, progress: bool) -> None:
    from tqdm import tqdm

    embedder, rng = embedder_for(settings), np.random.default_rng(settings.seed)
    name = collection_name(settings)
    with tqdm(total=settings.rows - start, desc=f"filling {name}", unit="nodes", disable=not progress) as bar:
        for first in range(start, settings.rows, FILL_BATCH):
            ids = [f"lg-{i}" for i in range(first, min(first + FILL_BATCH, settings.rows))]
            with gevent.Timeout(max(settings.timeout, 60), CallTimeout("filling: no answer within the timeout")):
                store.add(_nodes(ids, embedder, rng, doc_id=f"lg-fill-{first}"))
            bar.update(len(ids))


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    """Validate, create (marked as loadgen's), load and fill ``<collection>_llamaindex``; one-line errors."""
    name = collection_name(settings)
    collection.index_params(settings)
    collection.search_params(settings)  # validate before anything is created
    counting = dataclasses.replace(settings, collection=name)
    client = collection.connect(settings)
    store: MilvusVectorStore | None = None
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        owned = _inspect(client, settings, name)
        created = owned is None
        if created:
            store = _store(settings)  # the library creates the collection and its index
            # the library's schema has no description of ours: mark it with a property instead
            prop = {collection.OWNER_PROPERTY[0]: collection.OWNER_PROPERTY[1]}
            client.alter_collection_properties(name, properties=prop, timeout=settings.timeout)
            owned = True
        client.load_collection(name, timeout=max(settings.timeout, 60))
        rows = collection.count_rows(client, counting)
        if owned and rows < settings.rows:
            store = store or _store(settings)
            _fill(store, settings, start=rows, progress=progress)
            client.flush(name, timeout=max(settings.timeout, 120))
            rows = collection.count_rows(client, counting)
        return collection.Prepared(name, bool(owned), created, rows, version)
    except MilvusException as exc:
        raise LoadgenError(f"Milvus refused the llamaindex collection setup: {exc.message}") from None
    except CallTimeout as exc:
        raise LoadgenError(f"llamaindex collection setup: {exc}") from None
    finally:
        if store is not None:
            store.client.close()
        client.close()


def drop(settings: Settings) -> bool:
    """Drop ``<collection>_llamaindex`` only if loadgen created it. Returns True if dropped."""
    name = collection_name(settings)
    client = collection.connect(settings)
    try:
        if not client.has_collection(name, timeout=settings.timeout):
            return False
        if not collection.is_owned(client.describe_collection(name, timeout=settings.timeout)):
            return False
        client.drop_collection(name, timeout=settings.timeout)
        return True
    except MilvusException as exc:
        raise LoadgenError(f"Milvus refused to drop {name!r}: {exc.message}") from None
    finally:
        client.close()


__all__ = ["AsyncLlamaIndexStore", "LlamaIndexStore", "drop", "prepare"]
