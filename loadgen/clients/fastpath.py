"""The fast path: pymilvus's own gRPC channel, each query's request built once, the method called directly.

In the spirit of Locust's ``FastHttpUser`` beside ``HttpUser``: for capacity tests of the *server*, where the client's
own cost decides how many generator pods a test needs. A ``MilvusClient.search`` call spends about a third of its
client CPU in pymilvus (checking arguments, building the ``SearchRequest``, turning the answer into lists of dicts;
see bench/bench_cost.py). Here a pool of requests is built once per process with pymilvus's own ``Prepare`` (so the
bytes on the wire are what ``MilvusClient`` would send, consistency level and guarantee timestamp included) and kept
serialized; a call sends those bytes on the channel ``MilvusClient`` opened (same address, TLS, token and database
headers) and reads only what is measured: the status, the hit count and, for recall, the ids.

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
from typing import Any, ClassVar

from pymilvus import AsyncMilvusClient, MilvusClient
from pymilvus.client import ts_utils
from pymilvus.client.prepare import Prepare
from pymilvus.client.types import Status
from pymilvus.client.utils import check_status
from pymilvus.grpc_gen import milvus_pb2

from loadgen.clients import pymilvus as _pymilvus
from loadgen.config.settings import Settings
from loadgen.milvus import collection
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
        s = self.s = settings
        rows = RowFactory(s.dim, s.metric_type, s.seed + 7919)  # one seed: every process sends the same pool
        self.workload = truth.workload_for(s) if s.dataset else None
        vectors = self.workload.queries if self.workload is not None else rows.vectors(POOL)
        self.vectors = vectors  # the query vectors, pool order (tests replay them through MilvusClient)
        param = {"metric_type": s.metric_type, "params": search_params(s)}
        self.search = [Requests._search(s, param, [v.tolist()]) for v in vectors]
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
    def _search(s: Settings, param: dict[str, Any], data: list[list[float]]) -> bytes:
        kwargs, use_default = Requests._consistency(s)
        req = Prepare.search_requests_with_expr(
            collection_name=s.collection, anns_field="", param=param, limit=s.top_k, data=data, expr=s.filter,
            use_default_consistency=use_default, expr_params={}, **kwargs,
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


class _FastCommon:
    operations: ClassVar[dict[str, int]] = {"search": 10, "query": 2, "get": 2}
    fanout_op: ClassVar[str] = "search"
    client: Any  # the library's client: connection, TLS, token, schema; calls bypass it

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.conn: dict[str, Any] = settings.client_kwargs(f"loadgen-fast-{uuid.uuid4().hex}")
        self.rows = RowFactory(settings.dim, settings.metric_type, settings.seed + next(_instances))
        self.last_ids: list[int] = []
        self.req: Requests
        self._md: tuple[tuple[str, str], ...] = ()

    def request_name(self, op: str) -> str:
        return op

    def inputs(self, op: str) -> tuple[Any, ...]:
        pool = self.req.search if op == "search" else self.req.query if op == "query" else self.req.get
        if op not in self.operations:
            raise ValueError(f"unknown fast-path operation {op!r}")
        i = int(self.rows.rng.integers(0, len(pool)))
        return (pool[i], i)

    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None:
        pass

    def observe(self, op: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
        """After a successful call: recall@top_k of a dataset search's hits (see loadgen.stats.recall)."""
        if op != "search" or self.req.workload is None:
            return {}
        return {"recall": self.req.workload.recall(inputs[1], self.last_ids)}

    def _methods(self, channel: Any) -> None:
        """Search and Query on pymilvus's *raw* channel: its interceptors only add headers, which ``_metadata`` sends
        itself (in grpc.aio an intercepted call even runs in a task of its own)."""

        # request_serializer=None: the bytes go out as they are; _registered_method as generated stubs do (cheaper)
        def method(name: str, response: Any) -> Any:
            return channel.unary_unary(
                _SERVICE + name, request_serializer=None, response_deserializer=response.FromString,
                _registered_method=True,
            )  # fmt: skip

        self._search = method("Search", milvus_pb2.SearchResults)
        self._query = method("Query", milvus_pb2.QueryResults)

    def _metadata(self, db_name: str) -> tuple[tuple[str, Any], ...]:
        """The headers MilvusClient sends (its interceptors' and its CallContext's), built once. Left out: the
        ``identifier`` header (the server's per-client list does not show these calls) and a per-call clock reading."""
        md: list[tuple[str, Any]] = [("dbname", db_name)]
        if self.s.milvus_token:  # what pymilvus's authorization interceptor adds
            md.append(("authorization", base64.b64encode(self.s.milvus_token.encode())))
        return tuple(md)

    def _pool(self, schema: dict[str, Any]) -> Requests:
        """The process's pool. Fetching ``schema`` may have yielded (a greenlet, an await): the cache is checked
        again here, and building has no yield, so 1,000 users starting at once build it once."""
        return _cached(self.s) or _keep(self.s, Requests(self.s, self.client, schema))

    def _searched(self, response: Any) -> int:
        check_status(response.status)
        self.last_ids = _hits(response)
        return len(self.last_ids)

    @staticmethod
    def _queried(response: Any) -> int:
        if Status.EMPTY_COLLECTION in (response.status.code, response.status.error_code):
            return 0
        check_status(response.status)
        return _rows(response)


class FastPymilvusStore(_FastCommon):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.client = MilvusClient(**self.conn)
        t = settings.timeout
        self.req = _cached(settings) or self._pool(self.client.describe_collection(settings.collection, timeout=t))
        self._methods(self.client._get_connection()._channel)
        self._md = self._metadata(self.client._db_name)

    def call(self, op: str, request: bytes, _index: int = 0) -> int:
        if op == "search":
            return self._searched(self._search(request, timeout=self.s.timeout, metadata=self._md))
        return self._queried(self._query(request, timeout=self.s.timeout, metadata=self._md))

    def close(self) -> None:
        self.client.close()


class AsyncFastPymilvusStore(_FastCommon):
    """Construct on the running loop (``await AsyncFastPymilvusStore.open(settings)``), like ``AsyncMilvusClient``."""

    client: AsyncMilvusClient

    @classmethod
    async def open(cls, settings: Settings) -> AsyncFastPymilvusStore:
        import asyncio

        self = cls(settings)
        self.client = AsyncMilvusClient(**self.conn)
        # AsyncMilvusClient connects on its first call, and that handshake has no deadline: make it here, bounded
        first = self.client.has_collection(settings.collection, timeout=settings.timeout)
        await asyncio.wait_for(first, settings.timeout)
        if (req := _cached(settings)) is None:  # built on the loop once per process (tens of ms), then shared
            schema = await self.client.describe_collection(settings.collection, timeout=settings.timeout)
            req = self._pool(schema)
        self.req = req
        channel = self.client._get_connection()._async_channel
        # grpc.aio hands a channel's interceptor list to each method it makes: make ours with none (pymilvus appends
        # its header interceptors to that list in place, so the list object itself is swapped, then put back)
        interceptors, channel._unary_unary_interceptors = channel._unary_unary_interceptors, []
        try:
            self._methods(channel)
        finally:
            channel._unary_unary_interceptors = interceptors
        self._md = self._metadata(self.client._db_name)
        return self

    async def call(self, op: str, request: bytes, _index: int = 0) -> int:
        if op == "search":
            return self._searched(await self._search(request, timeout=self.s.timeout, metadata=self._md))
        return self._queried(await self._query(request, timeout=self.s.timeout, metadata=self._md))

    async def close(self) -> None:
        await self.client.close()


# the same collection as the pymilvus layer: the master prepares (and drops) it through that adapter
prepare = _pymilvus.prepare
drop = _pymilvus.drop
__all__ = ["AsyncFastPymilvusStore", "FastPymilvusStore", "collection", "drop", "prepare"]
