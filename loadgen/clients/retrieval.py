"""The retrieval layer: full-text (BM25), sparse, hybrid, range, grouping, iterator, text-match, multi-tenant and
freshness operations over loadgen's retrieval collection, through ``MilvusClient`` and ``AsyncMilvusClient``.

The operations themselves are records in ``retrieval_ops.OPERATIONS`` (and ``freshness``); this module holds the
per-user state they read (the corpus, its queries and relevance judgements, the tenant sampler) and the store
interface the users call. ``prepare`` checks the server's version against every operation the run will use before
anything is created: against Milvus 2.3.5 the run stops with one line naming the operation.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import numpy as np
from pymilvus import AsyncMilvusClient, MilvusClient

from loadgen.clients import freshness, layer_weights
from loadgen.clients.base import Adapter, Operation, Outcome, table
from loadgen.clients.retrieval_ops import OPERATIONS, Op, Probe
from loadgen.config.settings import Settings
from loadgen.milvus import capabilities, collection
from loadgen.milvus import retrieval as schema
from loadgen.workload import corpus as corpora
from loadgen.workload.tenants import TenantSampler, bucket
from loadgen.workload.text_vectors import TextVectors, sparse_vector, tokens

LAYER = "retrieval"
RELEVANCE_OPS = frozenset({"search", "full_text_search", "hybrid_search_rrf", "hybrid_search_weighted"})
ASYNC_PAGING = {"search_iterator": "search[offset-pages]", "query_iterator": "query[pk-pages]"}
PROBE_ID_BASE = 1 << 40  # ids of rows the freshness probes write: far above any corpus position


@functools.lru_cache(maxsize=4)
def load_corpus(spec: str, rows: int, seed: int, text_column: str) -> corpora.Corpus:
    """One corpus per process, shared by its users (files are read once)."""
    return corpora.open_corpus(spec, rows, seed, text_column)


def corpus_for(settings: Settings) -> corpora.Corpus:
    return load_corpus(settings.corpus, settings.rows, settings.seed, settings.text_column)


class _Common:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = schema.collection_name(settings)
        self.corpus = corpus_for(settings)
        self.vectors = TextVectors(settings)
        self.rng = np.random.default_rng(settings.seed + uuid.uuid4().int % (1 << 30))
        self.tenant_sampler = TenantSampler(settings.tenants, settings.tenant_zipf, self.rng)
        self.queries = self.corpus.judged_queries() or self._queries_from_documents()
        self.positions = {doc: i for i, doc in enumerate(self.corpus.doc_ids)}
        self.probe_ids: list[int] = []
        self.conn: dict[str, Any] = settings.client_kwargs(f"loadgen-{uuid.uuid4().hex}")

    def _queries_from_documents(self, n: int = 100) -> list[tuple[str, str]]:
        """A corpus without queries (a plain JSONL/Parquet file): a few words of random documents."""
        out = []
        for i in self.rng.choice(len(self.corpus), size=min(n, len(self.corpus)), replace=False):
            words = tokens(self.corpus.texts[int(i)])
            pick: list[int] = (
                self.rng.choice(len(words), size=min(3, len(words)), replace=False).tolist() if words else []
            )
            out.append((f"doc{int(i)}", " ".join(words[int(j)] for j in pick) or "text"))
        return out

    # ---- inputs helpers (untimed) ------------------------------------------------------------------------
    def pick_query(self) -> tuple[str, str]:
        return self.queries[int(self.rng.integers(0, len(self.queries)))]

    def pick_word(self) -> str:
        return str(self.rng.choice(tokens(self.pick_query()[1]) or ["text"]))

    def query_sparse(self) -> dict[int, float]:
        return sparse_vector(self.pick_query()[1])

    def new_id(self) -> int:
        return PROBE_ID_BASE + int(self.rng.integers(0, 1 << 60))

    def new_row(self, row_id: int) -> dict[str, Any]:
        text = self.pick_query()[1]
        return {
            "id": row_id,
            "text": text,
            "dense": self.vectors.dense([text])[0],
            "learned": sparse_vector(text),
            "tenant": self.tenant_sampler.pick(),
            "category": row_id % schema.CATEGORIES,
        }

    # ---- after a call (untimed) --------------------------------------------------------------------------
    def inputs(self, op: str) -> tuple[Any, ...]:
        return OPERATIONS_TABLE[op].inputs(self)

    def observe(self, op: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
        """What one call showed beyond its count: relevance against qrels, an iterator's first page, a tenant's
        bucket (see ``loadgen.stats.retrieval``; a write's freshness: ``freshness.query_outcome``)."""
        probe_: Probe = next(x for x in inputs if isinstance(x, Probe))
        if op in ("search_iterator", "query_iterator") and probe_.first_page_ms is not None:
            return {"first_page_ms": probe_.first_page_ms, "pages": probe_.pages}
        if op == "tenant_search":
            return {"tenant": inputs[1], "tenant_bucket": bucket(inputs[1], self.settings.tenants)}
        if op in RELEVANCE_OPS:
            relevant = self.corpus.qrels.get(inputs[-1])
            if relevant:
                ranked = [self.corpus.doc_ids[i] for i in probe_.ids if 0 <= i < len(self.corpus)]
                return {
                    "relevance_recall": corpora.recall_at_k(ranked, relevant, self.settings.top_k),
                    "ndcg@10": corpora.ndcg_at_k(ranked, relevant, 10),
                }
        return {}


class RetrievalStore(_Common):
    """One user's state; its ``client`` is a ``MilvusClient`` (sync) or an ``AsyncMilvusClient`` (async users)."""

    client: Any = None

    # the store interface of the tests and ``compare --modes``: one operation by name
    def call(self, op: str, *inputs: Any) -> int:
        return int(OPERATIONS_TABLE[op].call(self, *inputs))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class AsyncRetrievalStore(RetrievalStore):
    """``await AsyncRetrievalStore.open(settings)`` on the running loop: pymilvus makes async clients there."""

    @classmethod
    async def open(cls, settings: Settings) -> AsyncRetrievalStore:
        store = cls(settings)
        await _attach(store)
        return store

    async def call(self, op: str, *inputs: Any) -> int:  # type: ignore[override]
        return int(await OPERATIONS_TABLE[op].async_call(self, *inputs))

    async def close(self) -> None:  # type: ignore[override]
        await _aclose(self)


# ---- the operation table (loadgen.clients.base) --------------------------------------------------------------


def _operation(op: Op) -> Operation:
    return Operation(
        op.name, op.weight, op.kind, op.inputs, op.call, op.acall,
        outcome=lambda st, inputs, n: Outcome(int(n), extra=st.observe(op.name, inputs)),
        # AsyncMilvusClient's methods have the sync names; it has no iterators: the async twin pages by hand
        async_label=ASYNC_PAGING.get(op.name, op.name),
        search=op.name == "hybrid_search_rrf",  # what the async users' fan-out gathers
        needs=capabilities.show(op.min_version), server=op.server,
    )  # fmt: skip


OPERATIONS_TABLE = table(
    *(_operation(op) for op in OPERATIONS),
    *freshness.operations(),  # the write is one row, each visibility query after it another
)  # fmt: skip


def needs(settings: Settings) -> list[tuple[str, capabilities.Version]]:
    """(operation, lowest Milvus release) of every operation this run's weights select."""
    weights = layer_weights(settings.weights, {n: op.weight for n, op in OPERATIONS_TABLE.items()}, fanout=False)
    out = []
    for name, w in weights.items():
        level = capabilities.parse_version(OPERATIONS_TABLE[name].needs).level if OPERATIONS_TABLE[name].needs else None
        if w > 0 and level is not None:
            out.append((name, level))
    return out


def open_sync(settings: Settings) -> RetrievalStore:
    """A store with its ``MilvusClient`` (tests, ``compare --modes``)."""
    return _open(settings, False)


def _open(settings: Settings, use_async: bool) -> RetrievalStore:
    store = RetrievalStore(settings)
    if not use_async:
        store.client = MilvusClient(**store.conn)
    return store


async def _attach(store: RetrievalStore) -> None:
    """The async client is bound to the running loop; its first-call handshake is made here, bounded."""
    store.client = AsyncMilvusClient(**store.conn)
    timeout = store.settings.timeout
    await asyncio.wait_for(store.client.has_collection(store.name, timeout=timeout), timeout)


async def _aclose(store: RetrievalStore) -> None:
    if store.client is not None:
        await store.client.close()


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    corpus = corpus_for(settings)  # a bad corpus file: one line, before the server is asked anything
    return schema.prepare(settings, corpus, needs(settings), progress=progress)


def drop(settings: Settings) -> bool:
    return schema.drop_if_owned(settings)


ADAPTER = Adapter(
    layer=LAYER,
    operations=OPERATIONS_TABLE,
    open=_open,
    close=lambda store: store.close(),
    attach=_attach,
    aclose=_aclose,
    prepare=prepare,
    drop=drop,
    needs=((schema.SCHEMA_NEEDS[0], capabilities.show(schema.SCHEMA_NEEDS[1])),),
)
