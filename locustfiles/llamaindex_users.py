"""LlamaIndex, sync and async: ``locust -f locustfiles/llamaindex_users.py --host http://127.0.0.1:19530``."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.users.llamaindex import AsyncLlamaIndexUser, LlamaIndexUser

__all__ = ["AsyncLlamaIndexUser", "LlamaIndexUser"]
