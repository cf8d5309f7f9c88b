"""Raw pymilvus users: ``MilvusClient`` (sync) and ``AsyncMilvusClient`` (async)."""

from __future__ import annotations

from loadgen.users.base import StoreUser


class PymilvusUser(StoreUser):
    """MilvusClient: insert, upsert, search, query, get, delete."""

    layer = "pymilvus"
    use_async = False
    calls_off_hub = True


class AsyncPymilvusUser(StoreUser):
    """AsyncMilvusClient: the same tasks awaited one at a time, plus fanout."""

    layer = "pymilvus"
    use_async = True
    calls_off_hub = True
