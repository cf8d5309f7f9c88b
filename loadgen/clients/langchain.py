"""LangChain: ``langchain_milvus.Milvus`` (0.3.x), its sync methods and their ``a``-prefixed async twins.

Each store has its own connection (an alias of its own), so one user's ``close()`` cannot cut off the others. The
collection is ``<collection>_langchain`` with the library's own schema (``pk`` varchar, ``text``, ``vector``) plus
the metadata fields ``category`` (int 0..99) and ``source`` (str: ``prefill``, or the tag of the store that wrote
the row, so deletes only ever remove a store's own rows).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np
from pymilvus import AsyncMilvusClient, MilvusClient, MilvusException

from loadgen.clients.base import Adapter, Operation, Outcome, Skip, table
from loadgen.clients.lazy import lazy
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.milvus import collection, ownership, readiness
from loadgen.workload.embeddings import embedder_for, langchain_embeddings
from loadgen.workload.rows import CATEGORIES, WORDS

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_milvus import Milvus
else:  # imported on first use (see loadgen.clients.lazy)
    Document = lazy("langchain_core.documents", "Document")
    Milvus = lazy("langchain_milvus", "Milvus")

FILL_BATCH = 500
FIELDS = ("pk", "text", "vector", "category", "source")
_instances = itertools.count(1)


def collection_name(settings: Settings) -> str:
    return f"{settings.collection}_langchain"


# ---- errors the library logs and swallows ---------------------------------------------------------------------
# Milvus.delete/adelete return False and search_by_metadata/asearch_by_metadata return [] on a MilvusException,
# after logging it. A load generator must count those as failures, with the server's text: we catch the log record.
_swallowed: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("loadgen_lc_swallowed", default=None)


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = _swallowed.get()
        if sink is not None and record.levelno >= logging.ERROR:
            sink.append(record.getMessage())


logging.getLogger("langchain_milvus.vectorstores.milvus").addHandler(_Capture())


class SwallowedError(RuntimeError):  # a server error that langchain-milvus logged instead of raising
    pass


@contextmanager
def _surfacing() -> Iterator[list[str]]:
    sink: list[str] = []
    token = _swallowed.set(sink)
    try:
        yield sink
    finally:
        _swallowed.reset(token)


def _raise_swallowed(sink: list[str]) -> None:
    if sink:
        raise SwallowedError("langchain-milvus swallowed a server error: " + " ".join(sink[-1].split()))


class MMRRaceError(RuntimeError):  # max_marginal_relevance_search lost a hit between its two server calls
    pass


@contextmanager
def _translated(op: str, name: str) -> Iterator[None]:
    """Failures as one line that says what happened. The library's MMR searches, then queries the hits' vectors
    and indexes them by pk without a check: a hit deleted in between (by another user) raises a bare KeyError."""
    try:
        yield
    except KeyError as exc:
        if not op.startswith("max_marginal_relevance_search"):
            raise
        raise MMRRaceError(
            f"{name}: hit {exc.args[0]!r} vanished between the library's search and its vector query "
            "(deleted concurrently); langchain-milvus raises KeyError"
        ) from None


@contextmanager
def _bounded(seconds: float) -> Iterator[None]:
    """A deadline for library calls that pass no ``timeout`` to pymilvus (get_pks, search_by_metadata, the
    constructor's checks). Under gevent the grpc wait is cooperative, so the timer can interrupt it."""
    with gevent.Timeout(seconds, CallTimeout(f"no answer within {seconds:g} s")):
        yield


class _NoLoopWarning(logging.Filter):
    """The constructor tries an AsyncMilvusClient, which needs a running loop; stores are built in a greenlet (none
    runs there, on purpose: see ``loadgen.clients.base``) and get theirs in ``_attach``. Its warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to initialize AsyncMilvusClient")


logging.getLogger("langchain_milvus.vectorstores.milvus").addFilter(_NoLoopWarning())


def _store_kwargs(settings: Settings, alias: str | None) -> dict[str, Any]:
    conn = settings.client_kwargs(alias)  # uri, token, timeout and TLS options, passed on to pymilvus
    return {
        "embedding_function": langchain_embeddings(embedder_for(settings)),
        "collection_name": collection_name(settings),
        "connection_args": conn,
        "consistency_level": settings.consistency_level,
        "index_params": {
            "metric_type": settings.metric_type,
            "index_type": settings.index_type,
            "params": collection.index_params(settings),
        },
        "search_params": {"metric_type": settings.metric_type, "params": collection.search_params(settings)},
        "collection_description": collection.MARKER,  # used only when the library creates the collection
    }


class Store:
    """One user's ``Milvus`` vector store and what it remembers: its tag (its rows carry ``source == tag``), the
    ids it wrote (the only rows its deletes, and in a collection loadgen did not create its upserts, touch)."""

    lc: Milvus
    aclient: AsyncMilvusClient | None = None

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.t = settings.timeout
        self.tag = f"lg-{uuid.uuid4().hex[:12]}"
        self.alias = f"loadgen-lc-{uuid.uuid4().hex}"
        self.embedder = embedder_for(settings)
        self.seq = itertools.count()
        self.rng = np.random.default_rng(settings.seed + next(_instances))
        self.own_ids: deque[str] = deque(maxlen=100_000)
        self.k = settings.top_k
        self.expr = settings.filter or None  # searches: how an invalid filter reaches the server
        self.own_rows_only = settings.allow_foreign_collection

    def category(self) -> int:
        return int(self.rng.integers(0, CATEGORIES))

    def query_text(self) -> str:
        n = int(self.rng.integers(0, max(self.s.rows, 1)))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def new(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        ids = [f"{self.tag}-{next(self.seq)}" for _ in range(self.s.batch_size)]
        texts = [f"{WORDS[i % len(WORDS)]} document {pk}" for i, pk in enumerate(ids)]
        return ids, texts, [{"category": self.category(), "source": self.tag} for _ in ids]

    def own(self) -> list[str]:
        own = [self.own_ids.popleft() for _ in range(min(self.s.batch_size, len(self.own_ids)))]
        if not own:
            raise Skip("no rows of this user's own to delete yet")
        return own


# ---- one call, sync or async: the library's method, its errors made visible --------------------------------------
Plan = Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]  # (store, *inputs) -> (args, kwargs)


def _twin(method: str, plan: Plan, *, bounded: bool = True) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The sync call ``store.lc.<method>`` and its async twin ``a<method>``; each returns (result, swallowed log
    lines). ``bounded``: the sync call also gets a gevent deadline (the library passes no timeout to some calls)."""

    def call(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with _bounded(s.t) if bounded else contextlib_null(), _surfacing() as sink, _translated(method, method):
            return getattr(s.lc, method)(*args, **kw), sink

    async def acall(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with _surfacing() as sink, _translated(method, "a" + method):
            return await getattr(s.lc, "a" + method)(*args, **kw), sink

    return call, acall


@contextmanager
def contextlib_null() -> Iterator[None]:
    yield


def _op(name: str, weight: int, kind: Any, inputs: Callable[[Store], tuple[Any, ...]], plan: Plan, *,
        method: str = "", outcome: Callable[..., Outcome] | None = None, **kw: Any) -> Operation:  # fmt: skip
    call, acall = _twin(method or name, plan)
    return Operation(name, weight, kind, inputs, call, acall, outcome=outcome or _listed, **kw)


def _listed(_s: Store, _inputs: tuple[Any, ...], out: Any) -> Outcome:
    result, _sink = out
    return Outcome(len(result or []))


def _written(_s: Store, inputs: tuple[Any, ...], _out: Any) -> Outcome:
    return Outcome(len(inputs[0]))  # upsert returns None; from_texts returns the new store


def _deleted(_s: Store, inputs: tuple[Any, ...], out: Any) -> Outcome:
    result, sink = out
    if result is False:  # the library logged the server's error and returned False
        _raise_swallowed(sink)
        raise SwallowedError("langchain-milvus delete returned False")
    return Outcome(len(inputs[-1]))  # the library does not say how many rows went


def _by_metadata(_s: Store, _inputs: tuple[Any, ...], out: Any) -> Outcome:
    result, sink = out
    _raise_swallowed(sink)  # the library logged the server's error and returned []
    return Outcome(len(result or []))


def _remember(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
    if ok:
        s.own_ids.extend(inputs[0])


def _upsert_in(s: Store) -> tuple[Any, ...]:
    if s.own_rows_only:  # maybe a user's collection: rewrite only rows this user wrote (or new ones, then its own)
        ids = list(s.own_ids)[-s.s.batch_size :] or s.new()[0]
    else:  # loadgen's own collection: its prefilled rows
        ids = list(dict.fromkeys(str(int(x)) for x in s.rng.integers(0, max(s.s.rows, 1), s.s.batch_size)))
    source = s.tag if s.own_rows_only else "prefill"
    docs = [Document(page_content=f"upserted document {pk}", metadata={"category": s.category(), "source": source})
            for pk in ids]  # fmt: skip
    return ids, docs


def _upserted(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
    if ok and s.own_rows_only:
        s.own_ids.extend(pk for pk in inputs[0] if pk not in s.own_ids)


def _from_texts_plan(s: Store, ids: list[str], texts: list[str], metas: list[dict[str, Any]]) -> Any:
    """A classmethod: a new store over the SAME collection. The sync one shares this store's connection; the async
    one takes none (its async client needs an async connection; the default per-uri ones are shared, never closed)."""
    kw = _store_kwargs(s.s, None if s.aclient is not None else s.alias)
    kw["embedding"] = kw.pop("embedding_function")
    return (texts,), {**kw, "metadatas": metas, "ids": ids, "drop_old": False, "timeout": s.t}


def _from_texts() -> Operation:
    plan = _from_texts_plan

    def call(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with _bounded(s.t):
            return Milvus.from_texts(*args, **kw), []

    async def acall(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        return await Milvus.afrom_texts(*args, **kw), []

    return Operation("from_texts", 1, "write", lambda s: s.new(), call, acall, outcome=_written, done=_remember)


def _search(op: str) -> Plan:
    def plan(s: Store, q: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kw: dict[str, Any] = {"k": s.k, "expr": s.expr, "timeout": s.t}
        if op.startswith("max_marginal"):
            kw["fetch_k"] = 2 * s.k
        return (q,), kw

    return plan


def _text(s: Store) -> tuple[Any, ...]:
    return (s.query_text(),)


def _vector(s: Store) -> tuple[Any, ...]:
    return (s.embedder.embed([s.query_text()])[0],)


def _documents_in(s: Store) -> tuple[Any, ...]:
    ids, texts, metas = s.new()
    return ids, [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]


def _embeddings_in(s: Store) -> tuple[Any, ...]:
    ids, texts, metas = s.new()
    return ids, texts, s.embedder.embed(texts), metas


def _delete_expr_in(s: Store) -> tuple[Any, ...]:
    ids = s.own()
    return f'source == "{s.tag}" and pk in {ids}', ids


_ADD = lambda s, ids, *rest: (rest, {"ids": ids, "timeout": s.t})  # noqa: E731 - (ids, texts|docs, ...) -> call
_SEARCHES = (
    ("similarity_search", 10, _text), ("similarity_search_by_vector", 2, _vector),
    ("similarity_search_with_score", 2, _text), ("similarity_search_with_score_by_vector", 1, _vector),
    ("max_marginal_relevance_search", 1, _text), ("max_marginal_relevance_search_by_vector", 1, _vector),
)  # fmt: skip
OPERATIONS = table(
    _op("add_texts", 2, "write", lambda s: s.new(), _ADD, outcome=_written, done=_remember),
    _op("add_documents", 1, "write", _documents_in, _ADD, outcome=_written, done=_remember),
    _op("add_embeddings", 1, "write", _embeddings_in, _ADD, outcome=_written, done=_remember),
    *(_op(name, w, "read", inputs, _search(name), search=name == "similarity_search") for name, w, inputs in _SEARCHES),
    _op("delete", 1, "write", lambda s: (s.own(),), lambda s, ids: ((), {"ids": ids, "timeout": s.t}),
        outcome=_deleted),
    _op("delete_expr", 1, "write", _delete_expr_in, lambda s, expr, _ids: ((), {"expr": expr, "timeout": s.t}),
        method="delete", outcome=_deleted, label="delete[expr]"),
    _op("upsert", 1, "write", _upsert_in,
        lambda s, ids, docs: ((), {"ids": ids, "documents": docs, "timeout": s.t}),
        outcome=_written, done=_upserted),
    _op("search_by_metadata", 2, "read", lambda s: (s.s.filter or f"category == {s.category()}",),
        lambda s, expr: ((expr,), {"fields": ["pk", "category", "source"], "limit": s.k}), outcome=_by_metadata),
    _op("get_pks", 1, "read", lambda s: (f"category == {s.category()}",), lambda s, expr: ((expr,), {})),
    _from_texts(),
)  # fmt: skip


# ---- the store's life -------------------------------------------------------------------------------------------
def _open(settings: Settings, _use_async: bool) -> Store:
    s = Store(settings)
    with _bounded(settings.timeout):  # the constructor's own checks are sync calls (gevent-cooperative here)
        s.lc = Milvus(**_store_kwargs(settings, s.alias), timeout=settings.timeout)
    return s


async def _attach(s: Store) -> None:
    """An async client of its own (with our alias, the library would reuse the alias's *sync* connection), made on
    the loop; its first call, the handshake without a deadline of its own, is made here, bounded."""
    s.aclient = AsyncMilvusClient(**s.s.client_kwargs(s.alias + "-async"))
    s.lc._async_milvus_client = s.aclient
    await asyncio.wait_for(s.aclient.has_collection(collection_name(s.s), timeout=s.t), s.t)


def _close(s: Store) -> None:
    s.lc.client.close()


async def _aclose(s: Store) -> None:
    try:
        if s.aclient is not None:
            await s.aclient.close()
    finally:
        s.lc.client.close()  # a sync close of a connection the loop does not wait on: no network round trip


# ---- once per test, on the master ---------------------------------------------------------------------------------
LAYOUT = ownership.Layout("vector", FIELDS, "the LangChain layer", dynamic_ok=False)


def _count(client: MilvusClient, name: str, timeout: float) -> int:
    res = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=timeout)
    return int(res[0]["count(*)"]) if res else 0


def _fill(store: Milvus, settings: Settings, start: int, progress: bool) -> None:
    from tqdm import tqdm

    rng = np.random.default_rng(settings.seed)
    slow = max(settings.timeout, 60)
    name = collection_name(settings)
    with tqdm(total=settings.rows - start, desc=f"filling {name}", unit="rows", disable=not progress,
              file=sys.stderr) as bar:  # fmt: skip
        for first in range(start, settings.rows, FILL_BATCH):
            ids = [str(i) for i in range(first, min(first + FILL_BATCH, settings.rows))]
            texts = [f"{WORDS[int(i) % len(WORDS)]} document {i}" for i in ids]
            metas = [{"category": int(c), "source": "prefill"} for c in rng.integers(0, CATEGORIES, len(ids))]
            # the first batch creates the collection: the library then also creates the index and loads it,
            # without a deadline of its own, hence the timer around the whole call
            with _bounded(slow):
                store.add_texts(texts, metas, timeout=slow, ids=ids)
            bar.update(len(ids))


def _populate(client: MilvusClient, settings: Settings, *, created: bool, fill: bool, progress: bool) -> int:
    name, t = collection_name(settings), settings.timeout
    # Not timeout=: with it set, the library's collection-creating insert passes timeout twice and fails with
    # "MilvusClient.insert() got multiple values for keyword argument 'timeout'"; _fill passes it per call.
    with _bounded(max(t, 60)):
        store = Milvus(**_store_kwargs(settings, client._using))  # shares the setup connection
    rows = 0 if created else _count(client, name, t)
    if not fill:
        return rows
    if created and settings.rows == 0:  # the library creates the schema on the first insert only
        with _bounded(max(t, 60)):
            store.add_texts(["schema"], [{"category": 0, "source": "prefill"}], timeout=t, ids=["schema"])
        client.delete(name, ids=["schema"], timeout=t)
    if rows < settings.rows:
        _fill(store, settings, rows, progress)
        client.flush(name, timeout=max(t, 120))
    return _count(client, name, t)


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    """Validate, create (via the library, marked as loadgen's and this run's), fill ``<collection>_langchain`` and
    wait for its index; what may be created, written or reused is ``ownership.claim``'s decision."""
    collection.index_params(settings)  # validate before anything is created or dropped
    collection.search_params(settings)
    name, t = collection_name(settings), settings.timeout
    client = collection.connect(settings)
    try:
        version = str(client.get_server_version(timeout=t))
        c = ownership.claim(client, settings, name, LAYOUT)
        ownership.clear_for_create(client, settings, c)
        try:
            rows = _populate(client, settings, created=c.create, fill=c.owned, progress=progress)
            if c.create:  # the library made it (with our description) on the first insert
                ownership.stamp(client, settings, name)
            readiness.wait_until_indexed(client, settings, name, "vector", owned=c.owned)
        except (MilvusException, CallTimeout):
            if c.create and client.has_collection(name, timeout=t):  # ours, half made a moment ago
                client.drop_collection(name, timeout=t)
            raise
        return collection.Prepared(name, c.owned, c.create, rows, version)
    except MilvusException as exc:
        raise LoadgenError(f"Milvus refused the LangChain collection setup: {exc.message}") from None
    except CallTimeout as exc:
        raise LoadgenError(f"LangChain collection setup of {name!r} timed out: {exc}") from None
    finally:
        client.close()


def drop(settings: Settings) -> bool:
    """Drop ``<collection>_langchain`` if this run created it (see ``ownership``). Returns True if dropped."""
    return collection.release(settings, collection_name(settings)).dropped


ADAPTER = Adapter(
    layer="langchain", operations=OPERATIONS, open=_open, close=_close, attach=_attach, aclose=_aclose,
    prepare=prepare, drop=drop,
    libraries=("langchain_core.documents", "langchain_core.embeddings", "langchain_milvus"),
)  # fmt: skip
