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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import gevent
import numpy as np
from langchain_core.documents import Document
from langchain_milvus import Milvus
from pymilvus import AsyncMilvusClient, MilvusClient, MilvusException

from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.milvus import collection
from loadgen.workload.embeddings import embedder_for, langchain_embeddings
from loadgen.workload.rows import CATEGORIES, WORDS

FILL_BATCH = 500
FIELDS = ("pk", "text", "vector", "category", "source")
OPERATIONS = (
    "add_texts", "add_documents", "add_embeddings", "similarity_search", "similarity_search_by_vector",
    "similarity_search_with_score", "similarity_search_with_score_by_vector", "max_marginal_relevance_search",
    "max_marginal_relevance_search_by_vector", "delete", "delete_expr", "upsert", "search_by_metadata",
    "get_pks", "from_texts",
)  # fmt: skip
_WEIGHTS = {"similarity_search": 10, "add_texts": 2, "search_by_metadata": 2}  # the rest: 1, or 2 below
_WEIGHTS |= dict.fromkeys(("similarity_search_by_vector", "similarity_search_with_score"), 2)
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


class _Common:
    """Inputs and bookkeeping shared by both flavours."""

    operations: ClassVar[dict[str, int]] = {op: _WEIGHTS.get(op, 1) for op in OPERATIONS}
    fanout_op: ClassVar[str] = "similarity_search"
    prefix: ClassVar[str] = ""  # the async twins are the same names with an "a" in front
    from_texts_alias: str | None = None
    store: Milvus

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.tag = f"lg-{uuid.uuid4().hex[:12]}"  # this store's rows carry source == tag
        self.alias = f"loadgen-lc-{uuid.uuid4().hex}"
        self.embedder = embedder_for(settings)
        self.seq = itertools.count()
        self.rng = np.random.default_rng(settings.seed + next(_instances))
        self.own_ids: deque[str] = deque(maxlen=100_000)  # rows this store wrote: what the deletes remove
        self.k = settings.top_k
        self.expr = settings.filter or None  # searches: how an invalid filter reaches the server

    def request_name(self, op: str) -> str:
        name = "delete[expr]" if op == "delete_expr" else op
        return self.prefix + name

    # ---- inputs (untimed) ---------------------------------------------------------------------------------------
    def _category(self) -> int:
        return int(self.rng.integers(0, CATEGORIES))

    def _query(self) -> str:
        n = int(self.rng.integers(0, max(self.s.rows, 1)))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def _new(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        ids = [f"{self.tag}-{next(self.seq)}" for _ in range(self.s.batch_size)]
        texts = [f"{WORDS[i % len(WORDS)]} document {pk}" for i, pk in enumerate(ids)]
        return ids, texts, [{"category": self._category(), "source": self.tag} for _ in ids]

    def _own(self) -> list[str]:
        own = [self.own_ids.popleft() for _ in range(min(self.s.batch_size, len(self.own_ids)))]
        return own or [f"{self.tag}-missing-{next(self.seq)}" for _ in range(self.s.batch_size)]  # delete nothing

    def inputs(self, op: str) -> tuple[Any, ...]:  # noqa: PLR0911 - one branch per operation
        if op in ("add_texts", "from_texts"):
            ids, texts, metas = self._new()
            return ids, texts, metas
        if op == "add_documents":
            ids, texts, metas = self._new()
            return ids, [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]
        if op == "add_embeddings":
            ids, texts, metas = self._new()
            return ids, texts, self.embedder.embed(texts), metas
        if op in ("similarity_search", "similarity_search_with_score", "max_marginal_relevance_search"):
            return (self._query(),)
        if op.endswith("_by_vector"):
            return (self.embedder.embed([self._query()])[0],)
        if op == "delete":
            return (self._own(),)
        if op == "delete_expr":
            ids = self._own()
            return f'source == "{self.tag}" and pk in {ids}', ids
        if op == "upsert":
            ids = [str(int(x)) for x in self.rng.integers(0, max(self.s.rows, 1), self.s.batch_size)]
            ids = list(dict.fromkeys(ids))  # the library asserts the ids are unique
            docs = [Document(page_content=f"upserted document {pk}", metadata={"category": self._category(),
                    "source": "prefill"}) for pk in ids]  # fmt: skip
            return ids, docs
        if op == "search_by_metadata":
            return (self.s.filter or f"category == {self._category()}",)
        if op == "get_pks":
            return (f"category == {self._category()}",)
        raise ValueError(f"unknown langchain operation {op!r}")

    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None:
        if ok and op in ("add_texts", "add_documents", "add_embeddings", "from_texts"):
            self.own_ids.extend(inputs[0])

    def _plan(self, op: str, inputs: tuple[Any, ...]) -> tuple[str, tuple[Any, ...], dict[str, Any]]:  # noqa: PLR0911
        """The sync method name, positional and keyword arguments of one call (the async twin takes the same)."""
        t, first = self.s.timeout, inputs[0]
        if op in ("add_texts", "add_documents", "add_embeddings"):
            return op, inputs[1:], {"ids": first, "timeout": t}
        if op.startswith(("similarity_search", "max_marginal_relevance_search")):
            kw: dict[str, Any] = {"k": self.k, "expr": self.expr, "timeout": t}
            if op.startswith("max_marginal"):
                kw["fetch_k"] = 2 * self.k
            return op, (first,), kw
        if op == "delete":
            return op, (), {"ids": first, "timeout": t}
        if op == "delete_expr":
            return "delete", (), {"expr": first, "timeout": t}
        if op == "upsert":
            return op, (), {"ids": first, "documents": inputs[1], "timeout": t}
        if op == "search_by_metadata":
            return op, (first,), {"fields": ["pk", "category", "source"], "limit": self.k}
        if op == "get_pks":
            return op, (first,), {}
        if op == "from_texts":  # a classmethod: a new store over the SAME collection
            kw = _store_kwargs(self.s, self.from_texts_alias)
            kw["embedding"] = kw.pop("embedding_function")
            return op, (inputs[1],), {**kw, "metadatas": inputs[2], "ids": first, "drop_old": False, "timeout": t}
        raise ValueError(f"unknown langchain operation {op!r}")


class LangChainStore(_Common):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.from_texts_alias = self.alias  # the new store shares this store's connection
        with _bounded(settings.timeout):
            self.store = Milvus(**_store_kwargs(settings, self.alias), timeout=settings.timeout)

    def call(self, op: str, *inputs: Any) -> int:
        name, args, kw = self._plan(op, inputs)
        fn = Milvus.from_texts if op == "from_texts" else getattr(self.store, name)
        with _bounded(self.s.timeout), _surfacing() as sink, _translated(op, name):
            out = fn(*args, **kw)
        return _result(op, out, inputs, sink)

    def close(self) -> None:
        self.store.client.close()


def _result(op: str, out: Any, inputs: tuple[Any, ...], sink: list[str]) -> int:
    """How much came back: ids written, documents returned, pks found, rows deleted (as far as we can tell)."""
    if op in ("delete", "delete_expr"):
        if out is False:  # the library logged the server's error and returned False
            _raise_swallowed(sink)
            raise SwallowedError("langchain-milvus delete returned False")
        return len(inputs[-1]) or 1  # the library does not say how many rows went
    if op == "search_by_metadata":
        _raise_swallowed(sink)  # the library logged the server's error and returned []
    if op in ("upsert", "from_texts"):
        return len(inputs[0])  # upsert returns None; from_texts returns the new store
    return len(out or [])


class AsyncLangChainStore(_Common):
    """Construct on the running loop (``await AsyncLangChainStore.open(settings)``): the library's constructor makes
    an AsyncMilvusClient, which pymilvus binds to the running loop."""

    prefix: ClassVar[str] = "a"
    # afrom_texts: no alias. The new store's async client needs an async connection, and the library makes both
    # clients from the same connection_args; the default (per-uri, per-loop) connections are shared, never closed.
    from_texts_alias = None
    aclient: AsyncMilvusClient

    @classmethod
    async def open(cls, settings: Settings) -> AsyncLangChainStore:
        self = cls(settings)
        # The constructor's own checks are sync calls on this loop (bounded by the connect timeout). With our alias,
        # the async client it makes would reuse the *sync* connection of that alias, so we give it its own.
        self.store = Milvus(**_store_kwargs(settings, self.alias), timeout=settings.timeout)
        self.aclient = AsyncMilvusClient(**settings.client_kwargs(self.alias + "-async"))
        self.store._async_milvus_client = self.aclient
        # the async client connects on its first call, and that handshake has no deadline: make it here, bounded
        name = collection_name(settings)
        await asyncio.wait_for(self.aclient.has_collection(name, timeout=settings.timeout), settings.timeout)
        return self

    async def call(self, op: str, *inputs: Any) -> int:
        name, args, kw = self._plan(op, inputs)
        fn = Milvus.afrom_texts if op == "from_texts" else getattr(self.store, "a" + name)
        with _surfacing() as sink, _translated(op, "a" + name):
            out = await fn(*args, **kw)
        return _result(op, out, inputs, sink)

    async def close(self) -> None:
        try:
            await self.aclient.close()
        finally:
            self.store.client.close()


__all__ = ["AsyncLangChainStore", "LangChainStore", "drop", "prepare"]


# ---- once per test, on the master ---------------------------------------------------------------------------------
def _check_schema(desc: dict[str, Any], settings: Settings, owned: bool) -> None:
    name = collection_name(settings)
    fields = {f["name"]: f for f in desc.get("fields", [])}
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise LoadgenError(f"collection {name!r} lacks fields the LangChain layer writes: {', '.join(missing)}")
    dim = int(fields["vector"].get("params", {}).get("dim", 0))
    if dim != settings.dim:
        hint = "pass --recreate to rebuild it" if owned else "choose --dim to match or another --collection"
        raise LoadgenError(f"dimension mismatch: collection {name!r} has dim {dim}, --dim is {settings.dim}; {hint}")


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
    """Validate, create (via the library, marked as loadgen's) and fill ``<collection>_langchain``."""
    collection.index_params(settings)  # validate before anything is created or dropped
    collection.search_params(settings)
    name, t = collection_name(settings), settings.timeout
    client = collection.connect(settings)
    try:
        version = str(client.get_server_version(timeout=t))
        owned: bool | None = None
        if collection.exists(client, settings, name):
            owned = collection.is_owned(client.describe_collection(name, timeout=t))
            if not owned and not settings.allow_foreign_collection:
                raise LoadgenError(
                    f"collection {name!r} exists and was not created by loadgen; choose another --collection, "
                    "or pass --allow-foreign-collection to write into it"
                )
            if settings.recreate and not owned:
                raise LoadgenError(f"--recreate refused: collection {name!r} was not created by loadgen")
            if settings.recreate:
                client.drop_collection(name, timeout=t)
                owned = None
            else:
                _check_schema(client.describe_collection(name, timeout=t), settings, owned)
        created = owned is None
        try:
            rows = _populate(client, settings, created=created, fill=created or bool(owned), progress=progress)
        except (MilvusException, CallTimeout):
            if created and client.has_collection(name, timeout=t):  # ours, half made a moment ago
                client.drop_collection(name, timeout=t)
            raise
        return collection.Prepared(name, owned is not False, created, rows, version)
    except MilvusException as exc:
        raise LoadgenError(f"Milvus refused the LangChain collection setup: {exc.message}") from None
    except CallTimeout as exc:
        raise LoadgenError(f"LangChain collection setup of {name!r} timed out: {exc}") from None
    finally:
        client.close()


def drop(settings: Settings) -> bool:
    """Drop ``<collection>_langchain`` only if loadgen created it. Returns True if dropped."""
    name, t = collection_name(settings), settings.timeout
    client = collection.connect(settings)
    try:
        if not client.has_collection(name, timeout=t):
            return False
        if not collection.is_owned(client.describe_collection(name, timeout=t)):
            return False
        client.drop_collection(name, timeout=t)
        return True
    except MilvusException as exc:
        raise LoadgenError(f"could not drop {name!r}: {exc.message}") from None
    finally:
        client.close()
