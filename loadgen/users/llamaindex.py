"""LlamaIndex users: ``MilvusVectorStore`` and ``VectorStoreIndex`` (sync) and their async twins."""

from __future__ import annotations

from loadgen.users.base import StoreUser


class LlamaIndexUser(StoreUser):
    """add, query, query[filtered], delete, delete_nodes, get_nodes, VectorStoreIndex.from_documents, retrieve."""

    layer = "llamaindex"
    use_async = False


class AsyncLlamaIndexUser(StoreUser):
    """async_add, aquery, ..., aretrieve awaited one at a time, plus fanout of aquery."""

    layer = "llamaindex"
    use_async = True
