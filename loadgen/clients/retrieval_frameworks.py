"""Hybrid and full-text retrieval through the frameworks people build RAG with, sync and async:

- langchain-milvus: ``Milvus(builtin_function=BM25BuiltInFunction(), vector_field=["dense", "sparse"])``; a search
  on such a store is a hybrid search, reranked by ``ranker_type`` "rrf" or "weighted";
- llama-index-vector-stores-milvus: ``MilvusVectorStore(enable_sparse=True, sparse_embedding_function=BM25 built-in,
  hybrid_ranker=...)``; ``query`` in ``HYBRID`` mode (RRFRanker or WeightedRanker) and ``TEXT_SEARCH`` mode (BM25).

Each framework creates its own collection (``<collection>_lc_hybrid``, ``<collection>_li_hybrid``) from its own schema,
marked as loadgen's by the ``OWNER_PROPERTY`` collection property, filled from the corpus (ids are corpus positions).
Operations are ``retrieval_ops.Op`` records: ``inputs(store)`` untimed, ``call``/``acall`` one library call.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from loadgen.clients.base import Operation, Outcome
from loadgen.clients.retrieval_ops import DENSE_WEIGHT, RRF_K, Op, Probe
from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import capabilities as cap
from loadgen.milvus import preparation
from loadgen.milvus.collection import FILL_BATCH, Prepared, connect, release
from loadgen.milvus.ownership import is_owned
from loadgen.milvus.retrieval import properties
from loadgen.workload.corpus import Corpus
from loadgen.workload.embeddings import langchain_embeddings
from loadgen.workload.text_vectors import TextVectors

RANKERS: dict[str, tuple[str, dict[str, Any]]] = {
    "rrf": ("RRFRanker", {"k": RRF_K}),
    "weighted": ("WeightedRanker", {"weights": [DENSE_WEIGHT, 1 - DENSE_WEIGHT]}),
}


def lc_name(settings: Settings) -> str:
    return f"{settings.collection}_lc_hybrid"


def li_name(settings: Settings) -> str:
    return f"{settings.collection}_li_hybrid"


# ---- LangChain ---------------------------------------------------------------------------------------------------


def langchain_store(settings: Settings, vectors: TextVectors, *, creating: bool = False) -> Any:
    """Construct on the loop thread for async use: the library makes its AsyncMilvusClient in the constructor.
    ``creating``: the store that creates the collection (it marks it loadgen's); a user's store alters nothing."""
    from langchain_milvus import BM25BuiltInFunction, Milvus

    return Milvus(
        embedding_function=langchain_embeddings(vectors),  # type: ignore[arg-type]
        builtin_function=BM25BuiltInFunction(output_field_names="sparse"),
        vector_field=["dense", "sparse"],
        # explicit, per field: the library's default for a BM25 field is AUTOINDEX, which milvus-lite refuses
        # ("sparse field 'sparse' requires SPARSE_INVERTED_INDEX with metric BM25"); Milvus takes either
        index_params=[
            {"index_type": "AUTOINDEX", "metric_type": settings.metric_type, "params": {}},
            {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25", "params": {}},
        ],
        search_params=[{"metric_type": settings.metric_type, "params": {}}, {"metric_type": "BM25", "params": {}}],
        collection_name=lc_name(settings),
        connection_args=settings.client_kwargs(),
        consistency_level=settings.consistency_level,
        collection_properties=properties(settings) if creating else None,
        auto_id=False,
    )


def _lc_kwargs(st: Any, ranker: str) -> dict[str, Any]:
    _, params = RANKERS[ranker]
    return {"k": st.settings.top_k, "ranker_type": ranker, "ranker_params": params}


def _lc_ids(docs: list[Any], probe: Probe) -> int:
    probe.ids = [int(d.metadata["pk"]) for d in docs]
    return len(docs)


def _lc_op(ranker: str) -> Op:
    def call(st: Any, text: str, probe: Probe, qid: str) -> int:
        with warnings.catch_warnings():  # ranker_type is deprecated in favour of reranker Functions; still served
            warnings.simplefilter("ignore", DeprecationWarning)
            return _lc_ids(st.store.similarity_search(text, **_lc_kwargs(st, ranker)), probe)

    async def acall(st: Any, text: str, probe: Probe, qid: str) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return _lc_ids(await st.store.asimilarity_search(text, **_lc_kwargs(st, ranker)), probe)

    return Op(
        f"similarity_search[hybrid-{ranker}]",
        1,
        "read",
        _text_probe_qid,
        call,
        acall,
        cap.FULL_TEXT_BM25,
        "HybridSearch",
    )


# ---- LlamaIndex --------------------------------------------------------------------------------------------------


def llamaindex_store(
    settings: Settings, ranker: str = "rrf", *, use_async: bool = False, creating: bool = False
) -> Any:
    """``creating``: the store that creates the collection (it marks it loadgen's); a user's store alters nothing
    (the library releases, alters and reloads a loaded collection whenever it is given properties)."""
    from llama_index.vector_stores.milvus import MilvusVectorStore
    from llama_index.vector_stores.milvus.utils import BM25BuiltInFunction

    name, params = RANKERS[ranker]
    conn = settings.client_kwargs()
    return MilvusVectorStore(
        uri=conn.pop("uri"),
        token=conn.pop("token"),
        collection_name=li_name(settings),
        dim=settings.dim,
        enable_sparse=True,
        sparse_embedding_function=BM25BuiltInFunction(input_field_names="text", output_field_names="sparse_embedding"),
        hybrid_ranker=name,
        hybrid_ranker_params=params,
        consistency_level=settings.consistency_level,
        collection_properties=properties(settings) if creating else None,
        use_async_client=use_async,
    )


def _li_query(st: Any, text: str, mode: str) -> Any:
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    vector = st.vectors.dense([text])[0] if mode != "text_search" else None
    return VectorStoreQuery(
        query_str=text, query_embedding=vector, similarity_top_k=st.settings.top_k, mode=VectorStoreQueryMode(mode)
    )


def _li_op(name: str, mode: str, store_attr: str) -> Op:
    def call(st: Any, query: Any, probe: Probe, qid: str) -> int:
        result = getattr(st, store_attr).query(query)
        probe.ids = [int(i) for i in result.ids or []]
        return len(probe.ids)

    async def acall(st: Any, query: Any, probe: Probe, qid: str) -> int:
        result = await getattr(st, store_attr).aquery(query)
        probe.ids = [int(i) for i in result.ids or []]
        return len(probe.ids)

    def inputs(st: Any) -> tuple[Any, ...]:
        qid, text = st.pick_query()
        return (_li_query(st, text, mode), Probe(), qid)

    # full text alone is one search; a hybrid mode is the library's hybrid_search
    return Op(
        name, 1, "read", inputs, call, acall, cap.FULL_TEXT_BM25, "Search" if mode == "text_search" else "HybridSearch"
    )


def _text_probe_qid(st: Any) -> tuple[Any, ...]:
    qid, text = st.pick_query()
    return (text, Probe(), qid)


LANGCHAIN_OPS: tuple[Op, ...] = (_lc_op("rrf"), _lc_op("weighted"))
LLAMAINDEX_OPS: tuple[Op, ...] = (
    _li_op("query[hybrid-rrf]", "hybrid", "store"),
    _li_op("query[hybrid-weighted]", "hybrid", "weighted_store"),
    _li_op("query[text_search]", "text_search", "store"),
)


# An operation a library cannot run against a server, whatever loadgen sends: (server version prefix, why). The
# library's request is fixed, so the operation is refused before anything is created, in one line.
LIMITS: dict[str, tuple[str, str]] = {
    # MilvusVectorStore._sparse_search / _async_sparse_search hard-code search_params {"drop_ratio_search": 0.2};
    # milvus-lite answers "field 'sparse_embedding': only drop_ratio_search=0 is supported" (Milvus takes 0.2)
    "query[text_search]": (
        "milvus_lite",
        "llama-index-vector-stores-milvus sends every TEXT_SEARCH query with drop_ratio_search=0.2 "
        "and milvus-lite serves only drop_ratio_search=0; use a Milvus server, or leave this operation out",
    ),
}


def refuse_limited(operations: Iterable[str], server_version: str) -> None:
    """One line for the first of ``operations`` the library cannot run against this server (``LIMITS``)."""
    for name in operations:
        prefix, why = LIMITS.get(name, ("", ""))
        if prefix and server_version.startswith(prefix):
            raise LoadgenError(f"operation {name!r} cannot run against {server_version}: {why}")


# ---- once per run ------------------------------------------------------------------------------------------------


def _refuse_foreign(settings: Settings, name: str, operations: Iterable[str] = ()) -> bool:
    """Whether ``name`` exists (then it must be loadgen's). Also checks the server can serve BM25 functions and
    the chosen ``operations`` (``refuse_limited``)."""
    client = connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        cap.require([("BM25 built-in function", cap.FULL_TEXT_BM25)], version, where=settings.uri)
        refuse_limited(operations, version)
        if not client.has_collection(name, timeout=settings.timeout):
            return False
        if not is_owned(client.describe_collection(name, timeout=settings.timeout)):
            raise LoadgenError(
                f"collection {name!r} exists and was not created by loadgen; choose another --collection"
            )
        return True
    finally:
        client.close()


def prepare_langchain(settings: Settings, corpus: Corpus, *, progress: bool = False) -> bool:
    """Create (through the library) and fill ``<collection>_lc_hybrid`` unless it exists. True if created."""
    if _refuse_foreign(settings, lc_name(settings)):
        return False
    store = langchain_store(settings, TextVectors(settings), creating=True)
    with preparation.bar(lc_name(settings), len(corpus), unit="docs", enabled=progress) as bar:
        for first in range(0, len(corpus), FILL_BATCH):
            last = min(first + FILL_BATCH, len(corpus))
            store.add_texts(corpus.texts[first:last], ids=[str(i) for i in range(first, last)])
            bar.update(last - first)
    store.client.close()
    return True


def prepare_llamaindex(
    settings: Settings, corpus: Corpus, operations: Iterable[str] | None = None, *, progress: bool = False
) -> bool:
    """As ``prepare_langchain``, for the ``operations`` the run will make (default: all of ``LLAMAINDEX_OPS``)."""
    from llama_index.core.schema import TextNode

    chosen = [op.name for op in LLAMAINDEX_OPS] if operations is None else list(operations)
    if _refuse_foreign(settings, li_name(settings), chosen):
        return False
    store, vectors = llamaindex_store(settings, creating=True), TextVectors(settings)
    with preparation.bar(li_name(settings), len(corpus), unit="docs", enabled=progress) as bar:
        for first in range(0, len(corpus), FILL_BATCH):
            texts = corpus.texts[first : first + FILL_BATCH]
            dense = vectors.dense(texts)
            store.add([TextNode(text=t, id_=str(first + i), embedding=dense[i]) for i, t in enumerate(texts)])
            bar.update(len(texts))
    store.client.close()
    return True


def drop(settings: Settings) -> list[str]:
    """At the end of a run: the frameworks' collections this run created are dropped; returns their names."""
    return [name for name in (lc_name(settings), li_name(settings)) if release(settings, name).dropped]


# ---- as Locust users' adapters (loadgen.clients.langchain_hybrid, loadgen.clients.llamaindex_hybrid) ----------


def operation(op: Op, *, search: bool) -> Operation:
    """An ``Op`` as an operation of a user's table: its outcome is the hit count, scored against the corpus's qrels
    (recall@k and NDCG@10 into the run's retrieval statistics, as the retrieval layer's searches are)."""
    base, _, variant = op.name.partition("[")
    return Operation(
        op.name, op.weight, op.kind, op.inputs, op.call, op.acall,
        outcome=lambda st, inputs, n: Outcome(int(n), extra=st.observe("search", inputs)),
        async_label=f"a{base}[{variant}" if variant else "a" + base,  # the library's async method: asimilarity_search
        search=search, needs=cap.show(op.min_version), server=op.server,
    )  # fmt: skip


def prepared(settings: Settings, name: str, created: bool) -> Prepared:
    """What a framework's collection holds once prepared (``hooks`` logs it and drops it at the end if created)."""
    client = connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        client.load_collection(name, timeout=max(settings.timeout, 60))
        rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong",
                            timeout=settings.timeout)  # fmt: skip
        return Prepared(name, owned=True, created=created, rows=int(rows[0]["count(*)"]) if rows else 0,
                        server_version=version)  # fmt: skip
    finally:
        client.close()


def check(settings: Settings, name: str, operations: Iterable[str]) -> None:
    """What ``prepare`` would refuse, read-only: a server without BM25 functions, an operation the library cannot
    run against it, someone else's collection under the name."""
    _refuse_foreign(settings, name, operations)


# ---- per-user state: the retrieval layer's query picking and relevance, over a framework's store --------------


def _states() -> tuple[type, type]:
    from loadgen.clients.retrieval import _Common

    class LangChainHybrid(_Common):
        """``await LangChainHybrid.open(settings)`` on the running loop for async calls. As a user's store: built in
        its greenlet, then ``attach`` (on the loop) gives it the async client its ``asimilarity_search`` uses."""

        operations = {op.name: op.weight for op in LANGCHAIN_OPS}  # noqa: RUF012

        def __init__(self, settings: Settings) -> None:
            super().__init__(settings)
            self.store = langchain_store(settings, self.vectors)
            self.aclient: Any = None

        @classmethod
        async def open(cls, settings: Settings) -> Any:
            return cls(settings)

        async def attach(self) -> None:
            import asyncio

            from pymilvus import AsyncMilvusClient

            self.aclient = AsyncMilvusClient(**self.conn)  # an alias of its own (``_Common.conn``)
            self.store._async_milvus_client = self.aclient
            await asyncio.wait_for(
                self.aclient.has_collection(lc_name(self.settings), timeout=self.settings.timeout),
                self.settings.timeout,
            )

        async def aclose(self) -> None:
            try:
                if self.aclient is not None:
                    await self.aclient.close()
            finally:
                self.close()

        def close(self) -> None:
            self.store.client.close()

    class LlamaIndexHybrid(_Common):
        """As a user's store: a sync one built in its greenlet; an async one built by ``attach`` on the loop (the
        library makes its AsyncMilvusClient in the constructor, which needs a running loop)."""

        operations = {op.name: op.weight for op in LLAMAINDEX_OPS}  # noqa: RUF012

        def __init__(self, settings: Settings, use_async: bool = False, *, build: bool = True) -> None:
            super().__init__(settings)
            self.use_async = use_async
            self.store: Any = None
            self.weighted_store: Any = None
            if build:
                self.build()

        def build(self) -> None:
            self.store = llamaindex_store(self.settings, "rrf", use_async=self.use_async)
            self.weighted_store = llamaindex_store(self.settings, "weighted", use_async=self.use_async)

        @classmethod
        async def open(cls, settings: Settings) -> Any:
            return cls(settings, use_async=True)  # the library makes its AsyncMilvusClient on this loop

        async def attach(self) -> None:
            self.build()

        async def aclose(self) -> None:
            self.close()

        def close(self) -> None:
            for store in (self.store, self.weighted_store):
                if store is not None:
                    store.client.close()

    return LangChainHybrid, LlamaIndexHybrid


def state_classes() -> tuple[type, type]:
    """(LangChainHybrid, LlamaIndexHybrid): built lazily, the frameworks are heavy imports."""
    return _states()
