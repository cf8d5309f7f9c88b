"""Raw pymilvus: ``MilvusClient`` and ``AsyncMilvusClient`` behind the VectorStore interface."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pymilvus import AsyncMilvusClient, MilvusClient

from loadgen.adapters.base import Rows, Vectors
from loadgen.collection import search_params
from loadgen.settings import Settings


class _Common:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.name = settings.collection
        self.search_params = search_params(settings)
        # each user gets its own connection (its own alias), like an independent client of the app
        self.conn = {"uri": settings.uri, "token": settings.milvus_token, "timeout": settings.timeout}
        self.conn["alias"] = f"loadgen-{uuid.uuid4().hex}"

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

    def insert(self, rows: Rows) -> int:
        return int(self.client.insert(self.name, rows, timeout=self.s.timeout)["insert_count"])

    def upsert(self, rows: Rows) -> int:
        return int(self.client.upsert(self.name, rows, timeout=self.s.timeout)["upsert_count"])

    def search(self, vectors: Vectors) -> int:
        return _hits(self.client.search(self.name, **self._search_kwargs(vectors)))

    def query(self, expr: str) -> int:
        return len(self.client.query(self.name, **self._query_kwargs(expr)))

    def get(self, ids: list[int]) -> int:
        return len(self.client.get(self.name, ids=ids, output_fields=["id"], timeout=self.s.timeout))

    def delete(self, ids: list[int]) -> int:
        return int(self.client.delete(self.name, ids=ids, timeout=self.s.timeout)["delete_count"])

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

    async def insert(self, rows: Rows) -> int:
        return int((await self.client.insert(self.name, rows, timeout=self.s.timeout))["insert_count"])

    async def upsert(self, rows: Rows) -> int:
        return int((await self.client.upsert(self.name, rows, timeout=self.s.timeout))["upsert_count"])

    async def search(self, vectors: Vectors) -> int:
        return _hits(await self.client.search(self.name, **self._search_kwargs(vectors)))

    async def query(self, expr: str) -> int:
        return len(await self.client.query(self.name, **self._query_kwargs(expr)))

    async def get(self, ids: list[int]) -> int:
        return len(await self.client.get(self.name, ids=ids, output_fields=["id"], timeout=self.s.timeout))

    async def delete(self, ids: list[int]) -> int:
        return int((await self.client.delete(self.name, ids=ids, timeout=self.s.timeout))["delete_count"])

    async def close(self) -> None:
        await self.client.close()
