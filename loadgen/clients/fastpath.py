"""The fast path: pymilvus's own gRPC channel, each query's request built once, the method called directly.

In the spirit of Locust's ``FastHttpUser`` beside ``HttpUser``: for capacity tests of the *server*, where the client's
own cost decides how many generator pods a test needs. A ``MilvusClient.search`` call spends a third to a half of its
client CPU in pymilvus (checking arguments, building the ``SearchRequest``, turning the answer into lists of dicts;
see bench/bench_cost.py). Here a pool of requests is built once per process with pymilvus's own ``Prepare`` (so the
bytes on the wire are what ``MilvusClient`` would send, consistency level and guarantee timestamp included) and kept
serialized; a call sends those bytes on the channel ``MilvusClient`` opened (same address, TLS, token and database
headers) and reads only what is measured: the status, the hit count, the answer's size (``shape``) and, for recall,
the ids. ``--nq`` and ``--output-fields`` are built into the requests: request i searches pool vectors i .. i+nq-1.

What this does not do, on purpose: writes (their cost is the rows, not the client), a fresh vector per call
(a pool of ``POOL`` generated vectors, or the dataset's queries, picked at random), and ``Session`` consistency as
an app would see it (the guarantee timestamp is the one at build time; the fast path writes nothing itself).
The library users stay what apps really run; this is an option next to them.
"""

from __future__ import annotations

import base64
import itertools
import threading
import uuid
from typing import Any

from pymilvus import AsyncMilvusClient, MilvusClient
from pymilvus.client import ts_utils
from pymilvus.client.prepare import Prepare
from pymilvus.client.types import Status
from pymilvus.client.utils import check_status
from pymilvus.grpc_gen import milvus_pb2

from loadgen.clients import pymilvus, shape
from loadgen.clients.base import Adapter, Operation, Outcome, table
from loadgen.config.settings import Settings
from loadgen.milvus.collection import search_params
from loadgen.workload import truth
from loadgen.workload.rows import CATEGORIES, RowFactory

POOL = 1024  # generated query vectors (and id batches for get) per process: enough that the server's caches
# see a spread of queries, few enough that building them costs well under a second
_SERVICE = "/milvus.proto.milvus.MilvusService/"
_instances = itertools.count(1)


class Requests:
    """The serialized requests of one process (shared by its users): built once, read by every call."""

    def __init__(self, settings: Settings, client: Any, schema: dict[str, Any]) -> None:
        s = self.settings = settings
        rows = RowFactory(s.dim, s.metric_type, s.seed + 7919)  # one seed: every process sends the same pool
        self.workload = truth.workload_for(s) if s.dataset else None
        vectors = self.workload.queries if self.workload is not None else rows.vectors(POOL)
        self.vectors = vectors  # the query vectors, pool order (tests replay them through MilvusClient)
        param = {"metric_type": s.metric_type, "params": search_params(s)}
        fields = shape.output_fields(s.output_fields, schema)
        # request i searches --nq vectors: i, i+1, ... of the pool (wrapping), each one's index kept for recall
        self.queries = [tuple((i + j) % len(vectors) for j in range(s.nq)) for i in range(len(vectors))]
        self.search = [Requests._search(s, param, vectors[list(q)].tolist(), fields) for q in self.queries]
        if s.filter:
            self.query = [Requests._query(s, s.filter, ["id", "category"], s.top_k)]
        else:
            fields = ["id", "category"]
            self.query = [Requests._query(s, f"category == {c}", fields, s.top_k) for c in range(CATEGORIES)]
        existing = self.workload.dataset.count if self.workload is not None else s.rows
        self.get = [
            Requests._query(s, client._pack_pks_expr(schema, rows.existing_ids(s.batch_size, existing)), ["id"], None)
            for _ in range(POOL)
        ]

    @staticmethod
    def _consistency(s: Settings) -> tuple[dict[str, Any], bool]:
        kwargs: dict[str, Any] = {"consistency_level": s.consistency_level}
        use_default = ts_utils.construct_guarantee_ts(s.collection, kwargs)  # as GrpcHandler.search does
        return kwargs, use_default

    @staticmethod
    def _search(s: Settings, param: dict[str, Any], data: list[list[float]], fields: list[str]) -> bytes:
        kwargs, use_default = Requests._consistency(s)
        req = Prepare.search_requests_with_expr(
            collection_name=s.collection, anns_field="", param=param, limit=s.top_k, data=data, expr=s.filter,
            output_fields=fields or None, use_default_consistency=use_default, expr_params={}, **kwargs,
        )  # fmt: skip
        return bytes(req.SerializeToString())

    @staticmethod
    def _query(s: Settings, expr: str, fields: list[str], limit: int | None) -> bytes:
        kwargs, use_default = Requests._consistency(s)
        if limit is not None:
            kwargs["limit"] = limit
        req = Prepare.query_request(s.collection, expr, fields, None, use_default_consistency=use_default, **kwargs)
        return bytes(req.SerializeToString())


_pools: list[tuple[Settings, Requests]] = []
_pools_lock = threading.Lock()
_build_lock = threading.Lock()  # one builder per process (threads are not patched: a real lock)


def _cached(settings: Settings) -> Requests | None:
    with _pools_lock:
        return next((pool for s, pool in _pools if s == settings), None)


def _keep(settings: Settings, pool: Requests) -> Requests:
    with _pools_lock:
        if (kept := next((p for s, p in _pools if s == settings), None)) is not None:
            return kept  # another user built it meanwhile: share one
        _pools[:] = [(settings, pool)]  # a new test's settings replace the old pool
        return pool


def _hits(response: Any) -> list[int]:
    ids = response.results.ids
    return list(ids.int_id.data) if ids.HasField("int_id") else list(ids.str_id.data)


def _rows(response: Any) -> int:
    """Entities in a query answer: the length of its first field (``MilvusClient.query`` checks they agree)."""
    if not response.fields_data:
        return 0
    field = response.fields_data[0]
    kind = field.WhichOneof("field")
    if kind == "scalars":
        data = getattr(field.scalars, field.scalars.WhichOneof("data") or "long_data")
        return len(data.data)
    return len(field.vectors.float_vector.data) // max(field.vectors.dim, 1)


class Store:
    """One user's fast path: pymilvus's client for the connection (address, TLS, token, database) and the schema, the
    process's pool of requests, and Search/Query methods on the client's raw channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn: dict[str, Any] = settings.client_kwargs(f"loadgen-fast-{uuid.uuid4().hex}")
        self.rows = RowFactory(settings.dim, settings.metric_type, settings.seed + next(_instances))  # picks only
        self.client: Any = None
        self.req: Requests | None = None
        self.md: tuple[tuple[str, Any], ...] = ()
        self.search: Any = None
        self.query: Any = None

    def pool(self, schema: dict[str, Any]) -> Requests:
        """The process's pool, built once. Sync users open in threads of their own (``runtime.off_hub``), so without
        the lock ten users starting at once built ten pools side by side (~0.13 s of CPU each, fighting for the
        interpreter lock into the first seconds of the test); the others wait here for the one build and share it.
        Async users build on the loop's thread, one at a time anyway."""
        if (kept := _cached(self.settings)) is not None:
            return kept
        with _build_lock:
            return _cached(self.settings) or _keep(self.settings, Requests(self.settings, self.client, schema))

    def bind(self, channel: Any, db_name: str) -> None:
        """Search and Query on pymilvus's *raw* channel: its interceptors only add headers, which go along here as
        metadata built once (in grpc.aio an intercepted call even runs in a task of its own). Left out: the
        ``identifier`` header (the server's list of clients does not show these calls) and a per-call clock."""

        # request_serializer=None: the bytes go out as they are; _registered_method as generated stubs do (cheaper)
        def method(name: str, response: Any) -> Any:
            return channel.unary_unary(
                _SERVICE + name, request_serializer=None, response_deserializer=response.FromString,
                _registered_method=True,
            )  # fmt: skip

        self.search = method("Search", milvus_pb2.SearchResults)
        self.query = method("Query", milvus_pb2.QueryResults)
        md: list[tuple[str, Any]] = [("dbname", db_name)]
        if self.settings.milvus_token:  # what pymilvus's authorization interceptor adds
            md.append(("authorization", base64.b64encode(self.settings.milvus_token.encode())))
        self.md = tuple(md)


# ---- inputs (untimed): a prebuilt request, picked at random, and its index (the query's, for recall) ---------------
def _pick(name: str) -> Any:
    def inputs(st: Store) -> tuple[Any, ...]:
        assert st.req is not None
        pool: list[bytes] = getattr(st.req, name)
        i = int(st.rows.rng.integers(0, len(pool)))
        return (pool[i], i)

    return inputs


# ---- calls (timed): the bytes out, the answer parsed by grpc, its status checked as MilvusClient checks it ---------
def _search(st: Store, request: bytes, _i: int) -> Any:
    response = st.search(request, timeout=st.settings.timeout, metadata=st.md)
    check_status(response.status)
    return response


async def _asearch(st: Store, request: bytes, _i: int) -> Any:
    response = await st.search(request, timeout=st.settings.timeout, metadata=st.md)
    check_status(response.status)
    return response


def _query(st: Store, request: bytes, _i: int) -> Any:
    return _queried(st.query(request, timeout=st.settings.timeout, metadata=st.md))


async def _aquery(st: Store, request: bytes, _i: int) -> Any:
    return _queried(await st.query(request, timeout=st.settings.timeout, metadata=st.md))


def _queried(response: Any) -> Any:
    if Status.EMPTY_COLLECTION not in (response.status.code, response.status.error_code):
        check_status(response.status)
    return response


# ---- outcomes (untimed): only what is measured --------------------------------------------------------------------
def _searched(st: Store, inputs: tuple[Any, ...], response: Any) -> Outcome:
    ids = _hits(response)
    size = shape.response_bytes(response)
    if st.req is None or st.req.workload is None:
        return Outcome(len(ids), response_bytes=size)
    per_query, start = [], 0
    for topk in response.results.topks:  # the hits of each query vector, in order
        per_query.append(ids[start : start + topk])
        start += topk
    recall = shape.scores(st.req.workload.recall, st.req.queries[inputs[1]], per_query)
    return Outcome(len(ids), recall, response_bytes=size)


OPERATIONS = table(
    Operation("search", 10, "read", _pick("search"), _search, _asearch, outcome=_searched, search=True,
              async_label="search", server="Search", queries=lambda st, _inputs: st.settings.nq),
    Operation("query", 2, "read", _pick("query"), _query, _aquery, outcome=lambda st, i, r: Outcome(_rows(r)),
              async_label="query", server="Query"),
    Operation("get", 2, "read", _pick("get"), _query, _aquery, outcome=lambda st, i, r: Outcome(_rows(r)),
              async_label="get", server="Query"),
)  # fmt: skip


# ---- the store's life -------------------------------------------------------------------------------------------
def _open(settings: Settings, use_async: bool) -> Store:
    st = Store(settings)
    if not use_async:
        st.client = MilvusClient(**st.conn)
        if (req := _cached(settings)) is None:
            req = st.pool(st.client.describe_collection(settings.collection, timeout=settings.timeout))
        st.req = req
        st.bind(st.client._get_connection()._channel, st.client._db_name)
    return st


async def _attach(st: Store) -> None:
    """On the loop: the async client (pymilvus binds it to the running loop), its bounded handshake, the pool
    (built here once per process: tens of ms, then shared) and the methods, made without the channel's
    interceptors (grpc.aio hands a channel's interceptor list to each method it makes; pymilvus appends its header
    interceptors to that list in place, so the list object itself is swapped for the moment, then put back)."""
    import asyncio

    s = st.settings
    st.client = AsyncMilvusClient(**st.conn)
    await asyncio.wait_for(st.client.has_collection(s.collection, timeout=s.timeout), s.timeout)
    if (req := _cached(s)) is None:
        req = st.pool(await st.client.describe_collection(s.collection, timeout=s.timeout))
    st.req = req
    channel = st.client._get_connection()._async_channel
    interceptors, channel._unary_unary_interceptors = channel._unary_unary_interceptors, []
    try:
        st.bind(channel, st.client._db_name)
    finally:
        channel._unary_unary_interceptors = interceptors


ADAPTER = Adapter(  # the pymilvus layer's collection: prepared (and dropped) the same way
    layer="pymilvus-fast", operations=OPERATIONS, open=_open, close=pymilvus.ADAPTER.close, attach=_attach,
    aclose=pymilvus.ADAPTER.aclose, prepare=pymilvus.ADAPTER.prepare, drop=pymilvus.ADAPTER.drop,
    check=pymilvus.ADAPTER.check, request_shape=True,
)  # fmt: skip
