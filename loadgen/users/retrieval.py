"""Retrieval users: BM25 full-text, sparse, hybrid, range, grouping, iterators, text_match, tenants and
freshness probes over loadgen's retrieval collection, through MilvusClient (sync) and AsyncMilvusClient (async)."""

from __future__ import annotations

from loadgen.users.base import StoreUser


class RetrievalUser(StoreUser):
    layer = "retrieval"
    use_async = False


class AsyncRetrievalUser(StoreUser):
    layer = "retrieval"
    use_async = True
