"""Modern retrieval, sync and async: ``loadgen run -f locustfiles/retrieval_users.py --engine lite`` (needs Milvus
>= 2.5 or milvus-lite: BM25 functions, hybrid search, text_match)."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.users.retrieval import AsyncRetrievalUser, RetrievalUser

__all__ = ["AsyncRetrievalUser", "RetrievalUser"]
