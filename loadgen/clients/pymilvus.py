"""Raw pymilvus: ``MilvusClient`` and ``AsyncMilvusClient``, one table of operations for both.

The async client's methods have the sync client's names and arguments, so each operation's ``call`` serves both
flavours: on an ``AsyncMilvusClient`` it returns the coroutine the user awaits.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from typing import Any

from pymilvus import AsyncMilvusClient, MilvusClient

from loadgen.clients import shape
from loadgen.clients.base import Adapter, Operation, Outcome, Skip, table
from loadgen.config.settings import Settings
from loadgen.milvus import collection
from loadgen.workload import truth
from loadgen.workload.rows import CATEGORIES, RowFactory

_instances = itertools.count(1)


class Store:
    """One user's client and what it remembers: the ids it inserted (the only rows its upserts and deletes touch
    in a collection loadgen did not create, or that holds a dataset), and the dataset's queries, when one is set."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self.name = settings.collection
        self.search_params = {"metric_type": settings.metric_type, "params": collection.search_params(settings)}
        self.rows = RowFactory(settings.dim, settings.metric_type, settings.seed + next(_instances))
        self.own_ids: deque[int] = deque(maxlen=100_000)
        # each user gets its own connection (its own alias), like an independent client of the app
        self.conn: dict[str, Any] = settings.client_kwargs(f"loadgen-{uuid.uuid4().hex}")
        self.workload = truth.workload_for(settings) if settings.dataset else None
        self.existing_rows = self.workload.dataset.count if self.workload is not None else settings.rows
        # only rows of our own: the collection may be a user's, or hold a dataset whose ground truth is fixed
        self.own_rows_only = settings.allow_foreign_collection or self.workload is not None
        self.client = client
        self.output_fields: list[str] = []  # --output-fields, by name, once the schema is known (``shaped``)

    def shaped(self, schema: dict[str, Any]) -> None:
        """The search's output fields from the collection's schema; the client's Search answers kept for their size."""
        self.output_fields = shape.output_fields(self.settings.output_fields, schema)

    def take_own(self, n: int) -> list[int]:
        return [self.own_ids.popleft() for _ in range(min(n, len(self.own_ids)))]


# ---- inputs (untimed) -------------------------------------------------------------------------------------------
def _insert_in(s: Store) -> tuple[Any, ...]:
    return (s.rows.rows(s.rows.new_ids(s.settings.batch_size)),)


def _upsert_in(s: Store) -> tuple[Any, ...]:
    n = s.settings.batch_size
    if s.own_rows_only:  # rewrite rows this user inserted, or write new ones (which become its own)
        return (s.rows.rows(list(s.own_ids)[-n:] or s.rows.new_ids(n)),)
    return (s.rows.rows(s.rows.existing_ids(n, s.settings.rows)),)


def _search_in(s: Store) -> tuple[Any, ...]:
    """``--nq`` query vectors, and which dataset query each one is (None without a dataset)."""
    nq = s.settings.nq
    if s.workload is None:
        vectors = s.rows.query() if nq == 1 else [s.rows.query()[0] for _ in range(nq)]
        return (vectors, None)
    picked = s.rows.rng.integers(0, len(s.workload.queries), size=nq)
    return (s.workload.queries[picked].tolist(), tuple(int(j) for j in picked))


def _query_in(s: Store) -> tuple[Any, ...]:
    return (s.settings.filter or f"category == {int(s.rows.rng.integers(0, CATEGORIES))}",)


def _delete_in(s: Store) -> tuple[Any, ...]:
    own = s.take_own(s.settings.batch_size)
    if not own:
        raise Skip("no rows of this user's own to delete yet")
    return (own,)


# ---- calls (timed) ----------------------------------------------------------------------------------------------
def _search_kw(s: Store, vectors: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"data": vectors, "limit": s.settings.top_k, "search_params": s.search_params}
    if s.settings.filter:
        kw["filter"] = s.settings.filter
    if s.output_fields:
        kw["output_fields"] = s.output_fields
    return {**kw, "consistency_level": s.settings.consistency_level, "timeout": s.timeout}


def _search(s: Store, vectors: Any, _query_indexes: Any) -> Any:
    """The hits, and the Search response they were made of (kept by ``shape.capture``: its size is measured)."""
    shape.forget()
    return s.client.search(s.name, **_search_kw(s, vectors)), shape.taken()


async def _asearch(s: Store, vectors: Any, _query_indexes: Any) -> Any:
    shape.forget()
    return await s.client.search(s.name, **_search_kw(s, vectors)), shape.taken()


def _query(s: Store, expr: str) -> Any:
    return s.client.query(
        s.name, filter=expr, limit=s.settings.top_k, output_fields=["id", "category"],
        consistency_level=s.settings.consistency_level, timeout=s.timeout,
    )  # fmt: skip


def _count(s: Store, expr: str) -> Any:
    return s.client.query(s.name, filter=expr, output_fields=["count(*)"],
                          consistency_level=s.settings.consistency_level, timeout=s.timeout)  # fmt: skip


# ---- outcomes and bookkeeping (untimed) ---------------------------------------------------------------------------
def _searched(s: Store, inputs: tuple[Any, ...], value: Any) -> Outcome:
    result, response = value
    hits = sum(len(h) for h in result)
    size = shape.response_bytes(response)
    if s.workload is None or inputs[1] is None:
        return Outcome(hits, response_bytes=size)
    # pymilvus's hits keep their ids as a list: no hit made into a dict. Each query vector against its own truth
    ids = [h.ids if getattr(h, "ids", None) is not None else [hit["id"] for hit in h] for h in result]
    return Outcome(hits, shape.scores(s.workload.recall, inputs[1], ids), response_bytes=size)


def _counted(_s: Store, _inputs: tuple[Any, ...], result: Any) -> Outcome:
    return Outcome(int(result[0]["count(*)"]) if result else 0)  # the rows the server counted


def _inserted(s: Store, inputs: tuple[Any, ...], result: Any) -> Outcome:
    """With --ingest-readiness: the acknowledgement (now, as the call returned) and the ids, for
    ``loadgen.stats.ingest``."""
    n = int(result["insert_count"])
    if not s.settings.ingest_readiness:
        return Outcome(n)
    ack = time.perf_counter()
    return Outcome(
        n, extra={"ingest_ack": ack, "ingest_ids": [r["id"] for r in inputs[0]], "ingest_collection": s.name}
    )


def _remember(key: str) -> Any:
    def done(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
        if ok and (key == "insert" or s.own_rows_only):
            fresh = [row["id"] for row in inputs[0] if row["id"] not in s.own_ids]
            s.own_ids.extend(fresh)

    return done


OPERATIONS = table(
    Operation("insert", 2, "write", _insert_in, lambda s, rows: s.client.insert(s.name, rows, timeout=s.timeout),
              outcome=_inserted, done=_remember("insert"),
              async_label="insert", server="Insert"),
    Operation("upsert", 1, "write", _upsert_in, lambda s, rows: s.client.upsert(s.name, rows, timeout=s.timeout),
              outcome=lambda s, i, r: Outcome(int(r["upsert_count"])), done=_remember("upsert"),
              async_label="upsert", server="Upsert"),
    Operation("search", 10, "read", _search_in, _search, _asearch, outcome=_searched, search=True,
              async_label="search", server="Search", queries=lambda s, inputs: len(inputs[0])),
    Operation("query", 2, "read", _query_in, _query, async_label="query", server="Query"),
    Operation("get", 2, "read", lambda s: (s.rows.existing_ids(s.settings.batch_size, s.existing_rows),),
              lambda s, ids: s.client.get(s.name, ids=ids, output_fields=["id"], timeout=s.timeout), async_label="get",
              server="Query"),
    Operation("delete", 1, "write", _delete_in, lambda s, ids: s.client.delete(s.name, ids=ids, timeout=s.timeout),
              outcome=lambda s, i, r: Outcome(int(r["delete_count"])), async_label="delete", server="Delete"),
    Operation("query_count", 0, "read", lambda s: (s.settings.filter,), _count, outcome=_counted,
              label="query[count]", async_label="query[count]", server="Query"),
)  # fmt: skip


# ---- the store's life -------------------------------------------------------------------------------------------
def _open(settings: Settings, use_async: bool) -> Store:
    store = Store(settings)
    if not use_async:
        store.client = MilvusClient(**store.conn)
        shape.capture_client(store.client, False)
        if settings.output_fields != shape.DEFAULT_PROFILE:
            store.shaped(store.client.describe_collection(store.name, timeout=store.timeout))
    return store


async def _attach(store: Store) -> None:
    """The async client is bound to the running loop (pymilvus requires it). It connects on its first call, and that
    handshake has no deadline of its own: it is made here, bounded."""
    store.client = AsyncMilvusClient(**store.conn)
    await asyncio.wait_for(store.client.has_collection(store.name, timeout=store.timeout), store.timeout)
    shape.capture_client(store.client, True)  # after the handshake, which makes the stub anew
    if store.settings.output_fields != shape.DEFAULT_PROFILE:
        schema = await store.client.describe_collection(store.name, timeout=store.timeout)
        store.shaped(schema)


async def _aclose(store: Store) -> None:
    if store.client is not None:
        await store.client.close()


def _close(store: Store) -> None:
    if store.client is not None:
        store.client.close()


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    return collection.prepare(settings, progress=progress)


ADAPTER = Adapter(
    layer="pymilvus", operations=OPERATIONS, open=_open, close=_close, attach=_attach, aclose=_aclose,
    prepare=prepare, drop=collection.drop_if_owned, check=collection.check, request_shape=True,
)  # fmt: skip
