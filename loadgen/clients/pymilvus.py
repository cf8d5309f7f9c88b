"""Raw pymilvus: ``MilvusClient`` and ``AsyncMilvusClient`` behind the store interface."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from typing import Any, ClassVar

from pymilvus import AsyncMilvusClient, MilvusClient

from loadgen.clients.base import Rows, Vectors
from loadgen.config.settings import Settings
from loadgen.milvus import collection
from loadgen.milvus.collection import search_params
from loadgen.workload import truth
from loadgen.workload.rows import CATEGORIES, RowFactory

_instances = itertools.count(1)


class _Common:
    """Inputs and bookkeeping shared by both flavours: the loadgen schema, own ids for delete."""

    operations: ClassVar[dict[str, int]] = {"insert": 2, "upsert": 1, "search": 10, "query": 2, "get": 2, "delete": 1}
    fanout_op: ClassVar[str] = "search"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.name = settings.collection
        self.search_params = search_params(settings)
        self.rows = RowFactory(settings.dim, settings.metric_type, settings.seed + next(_instances))
        self.own_ids: deque[int] = deque(maxlen=100_000)  # rows this client inserted: what delete removes
        # each user gets its own connection (its own alias), like an independent client of the app
        self.conn: dict[str, Any] = settings.client_kwargs(f"loadgen-{uuid.uuid4().hex}")
        # --dataset: searches use its query vectors and report recall against its ground truth
        self.workload = truth.workload_for(settings) if settings.dataset else None
        self.existing_rows = self.workload.dataset.count if self.workload is not None else settings.rows
        self.last_ids: list[int] = []  # ids of the last search's hits (first query)

    def request_name(self, op: str) -> str:
        return op  # AsyncMilvusClient's methods have the same names

    def inputs(self, op: str) -> tuple[Any, ...]:
        if self.workload is not None and op in ("upsert", "search"):
            return self._dataset_inputs(op)
        return self._generated_inputs(op)

    def _generated_inputs(self, op: str) -> tuple[Any, ...]:
        n = self.s.batch_size
        if op == "insert":
            return (self.rows.rows(self.rows.new_ids(n)),)
        if op == "upsert":
            return (self.rows.rows(self._upsert_ids(n)),)
        if op == "search":
            return (self.rows.vectors(1).tolist(),)
        if op == "query":
            return (self.s.filter or f"category == {int(self.rows.rng.integers(0, CATEGORIES))}",)
        if op == "get":
            return (self.rows.existing_ids(n, self.existing_rows),)
        if op == "delete":
            own = [self.own_ids.popleft() for _ in range(min(n, len(self.own_ids)))]
            return (own or self.rows.new_ids(n),)
        raise ValueError(f"unknown pymilvus operation {op!r}")

    def _upsert_ids(self, n: int) -> list[int]:
        if self.s.allow_foreign_collection:  # maybe a user's collection: never rewrite their rows, only our own
            return list(self.own_ids)[-n:] or self.rows.new_ids(n)
        return self.rows.existing_ids(n, self.s.rows)

    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None:
        if op == "insert" and ok:
            self.own_ids.extend(row["id"] for row in inputs[0])

    def _dataset_inputs(self, op: str) -> tuple[Any, ...]:
        """--dataset: a search takes a random query vector (its index rides along for ``observe``); an upsert
        rewrites rows this client inserted, never the dataset's rows, whose ground truth is fixed."""
        assert self.workload is not None
        if op == "search":
            i = int(self.rows.rng.integers(0, len(self.workload.queries)))
            return (self.workload.queries[i : i + 1].tolist(), i)
        n = self.s.batch_size
        return (self.rows.rows(list(self.own_ids)[-n:] or self.rows.new_ids(n)),)

    def observe(self, op: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
        """After a successful call: recall@top_k of a dataset search's hits (see loadgen.stats.recall)."""
        if op != "search" or self.workload is None or len(inputs) < 2:
            return {}
        return {"recall": self.workload.recall(inputs[1], self.last_ids)}

    def _searched(self, result: Any) -> int:
        self.last_ids = [int(hit["id"]) for hit in result[0]] if len(result) else []
        return _hits(result)

    def _search_kwargs(self, vectors: Vectors) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "data": vectors,
            "limit": self.s.top_k,
            "search_params": {"metric_type": self.s.metric_type, "params": self.search_params},
            "consistency_level": self.s.consistency_level,
            "timeout": self.s.timeout,
        }
        if self.s.filter:
            kw["filter"] = self.s.filter
        return kw

    def _query_kwargs(self, expr: str) -> dict[str, Any]:
        return {
            "filter": expr,
            "limit": self.s.top_k,
            "output_fields": ["id", "category"],
            "consistency_level": self.s.consistency_level,
            "timeout": self.s.timeout,
        }


def _hits(result: Any) -> int:
    return sum(len(hits) for hits in result)


class PymilvusStore(_Common):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.client = MilvusClient(**self.conn)

    def call(self, op: str, *inputs: Any) -> int:
        c, t = self.client, self.s.timeout
        if op == "insert":
            return int(c.insert(self.name, inputs[0], timeout=t)["insert_count"])
        if op == "upsert":
            return int(c.upsert(self.name, inputs[0], timeout=t)["upsert_count"])
        if op == "search":
            return self._searched(c.search(self.name, **self._search_kwargs(inputs[0])))
        if op == "query":
            return len(c.query(self.name, **self._query_kwargs(inputs[0])))
        if op == "get":
            return len(c.get(self.name, ids=inputs[0], output_fields=["id"], timeout=t))
        if op == "delete":
            return int(c.delete(self.name, ids=inputs[0], timeout=t)["delete_count"])
        raise ValueError(f"unknown pymilvus operation {op!r}")

    def close(self) -> None:
        self.client.close()


class AsyncPymilvusStore(_Common):
    """Construct on the running loop (``await AsyncPymilvusStore.open(settings)``): pymilvus requires it."""

    client: AsyncMilvusClient

    @classmethod
    async def open(cls, settings: Settings) -> AsyncPymilvusStore:
        self = cls(settings)
        self.client = AsyncMilvusClient(**self.conn)
        # AsyncMilvusClient connects on its first call, and that handshake has no deadline: make it here, bounded
        await asyncio.wait_for(self.client.has_collection(self.name, timeout=settings.timeout), settings.timeout)
        return self

    async def call(self, op: str, *inputs: Any) -> int:
        c, t = self.client, self.s.timeout
        if op == "insert":
            return int((await c.insert(self.name, inputs[0], timeout=t))["insert_count"])
        if op == "upsert":
            return int((await c.upsert(self.name, inputs[0], timeout=t))["upsert_count"])
        if op == "search":
            return self._searched(await c.search(self.name, **self._search_kwargs(inputs[0])))
        if op == "query":
            return len(await c.query(self.name, **self._query_kwargs(inputs[0])))
        if op == "get":
            return len(await c.get(self.name, ids=inputs[0], output_fields=["id"], timeout=t))
        if op == "delete":
            return int((await c.delete(self.name, ids=inputs[0], timeout=t))["delete_count"])
        raise ValueError(f"unknown pymilvus operation {op!r}")

    async def close(self) -> None:
        await self.client.close()


__all__ = ["AsyncPymilvusStore", "PymilvusStore", "Rows"]


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    return collection.prepare(settings, progress=progress)


def drop(settings: Settings) -> bool:
    return collection.drop_if_owned(settings)
