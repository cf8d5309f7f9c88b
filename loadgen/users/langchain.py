"""LangChain users: ``langchain_milvus.Milvus`` sync methods, and their ``a``-prefixed async twins."""

from __future__ import annotations

from loadgen.users.base import StoreUser


class LangChainUser(StoreUser):
    """Milvus vector store: add_*, similarity_search*, max_marginal_relevance_search*, delete, upsert, ..."""

    layer = "langchain"
    use_async = False


class AsyncLangChainUser(StoreUser):
    """The same tasks through the async twins (aadd_texts, asimilarity_search, ...), plus fanout."""

    layer = "langchain"
    use_async = True
