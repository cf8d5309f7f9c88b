"""Hybrid and full-text search through LangChain and LlamaIndex, sync and async:
``loadgen run -f locustfiles/hybrid_users.py --engine lite`` (needs Milvus >= 2.5 or milvus-lite: BM25 functions)."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.users.hybrid import (
    AsyncLangChainHybridUser,
    AsyncLlamaIndexHybridUser,
    LangChainHybridUser,
    LlamaIndexHybridUser,
)

__all__ = ["AsyncLangChainHybridUser", "AsyncLlamaIndexHybridUser", "LangChainHybridUser", "LlamaIndexHybridUser"]
