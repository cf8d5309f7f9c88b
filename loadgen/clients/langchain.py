"""LangChain: ``langchain_milvus.Milvus`` (0.3.x), its sync methods and their ``a``-prefixed async twins.

Each store has its own connection (an alias of its own), so one user's ``close()`` cannot cut off the others. The
collection is ``<collection>_langchain`` with the library's own schema (``pk`` varchar, ``text``, ``vector``) plus
the metadata fields ``category`` (int 0..99) and ``source`` (str: ``prefill``, ``dataset``, or the tag of the store
that wrote the row, so deletes only ever remove a store's own rows). Its setup (once per test, on the master) is
``loadgen.clients.langchain_setup``. With ``--dataset`` the k-NN searches run the dataset's queries, scored for recall
(``loadgen.workload.dataset_texts``).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from pymilvus import AsyncMilvusClient

from loadgen.clients.base import Adapter, Operation, Outcome, Skip, table
from loadgen.clients.langchain_setup import bounded, check, collection_name, drop, prepare, store_kwargs
from loadgen.clients.lazy import lazy
from loadgen.config.settings import Settings
from loadgen.workload import dataset_texts, truth
from loadgen.workload.embeddings import embedder_for
from loadgen.workload.rows import CATEGORIES, WORDS

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_milvus import Milvus
else:  # imported on first use (see loadgen.clients.lazy)
    Document = lazy("langchain_core.documents", "Document")
    Milvus = lazy("langchain_milvus", "Milvus")

_instances = itertools.count(1)


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


class Store:
    """One user's ``Milvus`` vector store and what it remembers: its tag (its rows carry ``source == tag``), the
    ids it wrote (the only rows its deletes, and in a collection loadgen did not create its upserts, touch)."""

    lc: Milvus
    aclient: AsyncMilvusClient | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self.tag = f"lg-{uuid.uuid4().hex[:12]}"
        self.alias = f"loadgen-lc-{uuid.uuid4().hex}"
        self.embedder = embedder_for(settings)
        self.seq = itertools.count()
        self.rng = np.random.default_rng(settings.seed + next(_instances))
        self.own_ids: deque[str] = deque(maxlen=100_000)
        self.top_k = settings.top_k
        self.expr = settings.filter or None  # searches: how an invalid filter reaches the server
        self.workload = truth.workload_for(settings) if settings.dataset else None
        # only rows of our own: the collection may be a user's, or hold a dataset whose ground truth is fixed
        self.own_rows_only = settings.allow_foreign_collection or self.workload is not None

    def category(self) -> int:
        return int(self.rng.integers(0, CATEGORIES))

    def query_text(self) -> str:
        n = int(self.rng.integers(0, max(self.settings.rows, 1)))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def query(self) -> tuple[str, int | None]:
        """A search's text, and the dataset query it stands for (None without --dataset: nothing to score)."""
        if self.workload is None:
            return self.query_text(), None
        j = int(self.rng.integers(0, len(self.workload.queries)))
        return dataset_texts.query_text(j), j

    def new(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        ids = [f"{self.tag}-{next(self.seq)}" for _ in range(self.settings.batch_size)]
        texts = [f"{WORDS[i % len(WORDS)]} document {pk}" for i, pk in enumerate(ids)]
        return ids, texts, [{"category": self.category(), "source": self.tag} for _ in ids]

    def own(self) -> list[str]:
        own = [self.own_ids.popleft() for _ in range(min(self.settings.batch_size, len(self.own_ids)))]
        if not own:
            raise Skip("no rows of this user's own to delete yet")
        return own


# ---- one call, sync or async: the library's method, its errors made visible --------------------------------------
Plan = Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]  # (store, *inputs) -> (args, kwargs)


def _twin(method: str, plan: Plan) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The sync call ``store.lc.<method>`` and its async twin ``a<method>``; each returns (result, swallowed log
    lines). The sync call also gets a gevent deadline (the library passes no timeout to some calls)."""

    def call(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with bounded(s.timeout), _surfacing() as sink, _translated(method, method):
            return getattr(s.lc, method)(*args, **kw), sink

    async def acall(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with _surfacing() as sink, _translated(method, "a" + method):
            return await getattr(s.lc, "a" + method)(*args, **kw), sink

    return call, acall


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
        ids = list(s.own_ids)[-s.settings.batch_size :] or s.new()[0]
    else:  # loadgen's own collection: its prefilled rows
        drawn = s.rng.integers(0, max(s.settings.rows, 1), s.settings.batch_size)
        ids = list(dict.fromkeys(str(int(x)) for x in drawn))
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
    kw = store_kwargs(s.settings, None if s.aclient is not None else s.alias)
    kw["embedding"] = kw.pop("embedding_function")
    return (texts,), {**kw, "metadatas": metas, "ids": ids, "drop_old": False, "timeout": s.timeout}


def _from_texts() -> Operation:
    plan = _from_texts_plan

    def call(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        with bounded(s.timeout):
            return Milvus.from_texts(*args, **kw), []

    async def acall(s: Store, *inputs: Any) -> Any:
        args, kw = plan(s, *inputs)
        return await Milvus.afrom_texts(*args, **kw), []

    return Operation(
        "from_texts", 1, "write", lambda s: s.new(), call, acall, outcome=_written, done=_remember, server="Insert"
    )


def _search(op: str) -> Plan:
    def plan(s: Store, q: Any, _query_index: int | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kw: dict[str, Any] = {"k": s.top_k, "expr": s.expr, "timeout": s.timeout}
        if op.startswith("max_marginal"):
            kw["fetch_k"] = 2 * s.top_k
        return (q,), kw

    return plan


def _text(s: Store) -> tuple[Any, ...]:
    return s.query()


def _vector(s: Store) -> tuple[Any, ...]:
    text, j = s.query()
    return s.embedder.embed([text])[0], j


def _scored(s: Store, inputs: tuple[Any, ...], out: Any) -> Outcome:
    """A k-NN search's hits, scored against the dataset's ground truth when it ran one of its queries."""
    result, _sink = out
    hits = result or []
    j = inputs[1] if len(inputs) > 1 else None
    if s.workload is None or j is None:
        return Outcome(len(hits))
    docs = [h[0] if isinstance(h, tuple) else h for h in hits]  # the with_score twins return (doc, score)
    return Outcome(len(hits), s.workload.recall(j, [dataset_texts.hit_index(d.metadata.get("pk")) for d in docs]))


def _documents_in(s: Store) -> tuple[Any, ...]:
    ids, texts, metas = s.new()
    return ids, [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]


def _embeddings_in(s: Store) -> tuple[Any, ...]:
    ids, texts, metas = s.new()
    return ids, texts, s.embedder.embed(texts), metas


def _delete_expr_in(s: Store) -> tuple[Any, ...]:
    ids = s.own()
    return f'source == "{s.tag}" and pk in {ids}', ids


_ADD = lambda s, ids, *rest: (rest, {"ids": ids, "timeout": s.timeout})  # noqa: E731 - (ids, texts|docs, ...) -> call
_SEARCHES = (
    ("similarity_search", 10, _text), ("similarity_search_by_vector", 2, _vector),
    ("similarity_search_with_score", 2, _text), ("similarity_search_with_score_by_vector", 1, _vector),
    ("max_marginal_relevance_search", 1, _text), ("max_marginal_relevance_search_by_vector", 1, _vector),
)  # fmt: skip
OPERATIONS = table(
    _op("add_texts", 2, "write", lambda s: s.new(), _ADD, outcome=_written, done=_remember, server="Insert"),
    _op("add_documents", 1, "write", _documents_in, _ADD, outcome=_written, done=_remember, server="Insert"),
    _op("add_embeddings", 1, "write", _embeddings_in, _ADD, outcome=_written, done=_remember, server="Insert"),
    # MMR is not scored: its hits are diversified on purpose, not the k nearest
    *(_op(name, w, "read", inputs, _search(name), search=name == "similarity_search", server="Search",
          outcome=None if name.startswith("max_marginal") else _scored) for name, w, inputs in _SEARCHES),
    _op("delete", 1, "write", lambda s: (s.own(),), lambda s, ids: ((), {"ids": ids, "timeout": s.timeout}),
        outcome=_deleted, server="Delete"),
    _op("delete_expr", 1, "write", _delete_expr_in, lambda s, expr, _ids: ((), {"expr": expr, "timeout": s.timeout}),
        method="delete", outcome=_deleted, label="delete[expr]", server="Delete"),
    _op("upsert", 1, "write", _upsert_in,
        lambda s, ids, docs: ((), {"ids": ids, "documents": docs, "timeout": s.timeout}),
        outcome=_written, done=_upserted, server="Insert"),
    _op("search_by_metadata", 2, "read", lambda s: (s.settings.filter or f"category == {s.category()}",),
        lambda s, expr: ((expr,), {"fields": ["pk", "category", "source"], "limit": s.top_k}), outcome=_by_metadata,
        server="Query"),
    _op("get_pks", 1, "read", lambda s: (f"category == {s.category()}",), lambda s, expr: ((expr,), {}),
        server="Query"),
    _from_texts(),
)  # fmt: skip


# ---- the store's life -------------------------------------------------------------------------------------------
def _open(settings: Settings, _use_async: bool) -> Store:
    s = Store(settings)
    with bounded(settings.timeout):  # the constructor's own checks are sync calls (gevent-cooperative here)
        s.lc = Milvus(**store_kwargs(settings, s.alias), timeout=settings.timeout)
    return s


async def _attach(s: Store) -> None:
    """An async client of its own (with our alias, the library would reuse the alias's *sync* connection), made on
    the loop; its first call, the handshake without a deadline of its own, is made here, bounded."""
    s.aclient = AsyncMilvusClient(**s.settings.client_kwargs(s.alias + "-async"))
    s.lc._async_milvus_client = s.aclient
    await asyncio.wait_for(s.aclient.has_collection(collection_name(s.settings), timeout=s.timeout), s.timeout)


def _close(s: Store) -> None:
    s.lc.client.close()


async def _aclose(s: Store) -> None:
    try:
        if s.aclient is not None:
            await s.aclient.close()
    finally:
        s.lc.client.close()  # a sync close of a connection the loop does not wait on: no network round trip


ADAPTER = Adapter(
    layer="langchain", operations=OPERATIONS, open=_open, close=_close, attach=_attach, aclose=_aclose,
    prepare=prepare, drop=drop, check=check,
    libraries=("langchain_core.documents", "langchain_core.embeddings", "langchain_milvus"),
)  # fmt: skip
