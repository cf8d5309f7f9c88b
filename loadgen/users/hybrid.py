"""Hybrid and full-text search through the frameworks people build RAG with, sync and async: langchain-milvus's
``Milvus`` with the BM25 built-in function (``langchain-hybrid``) and llama-index's ``MilvusVectorStore`` with
``enable_sparse`` (``llamaindex-hybrid``), scored against the corpus's qrels (``--corpus``, as the retrieval layer)."""

from __future__ import annotations

from loadgen.users.base import StoreUser


class LangChainHybridUser(StoreUser):
    layer = "langchain-hybrid"
    use_async = False


class AsyncLangChainHybridUser(StoreUser):
    layer = "langchain-hybrid"
    use_async = True


class LlamaIndexHybridUser(StoreUser):
    layer = "llamaindex-hybrid"
    use_async = False


class AsyncLlamaIndexHybridUser(StoreUser):
    layer = "llamaindex-hybrid"
    use_async = True
