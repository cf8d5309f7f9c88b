"""Every user of every client layer, for the web UI's class picker: ``locust -f locustfiles/all_users.py``."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.users.langchain import AsyncLangChainUser, LangChainUser
from loadgen.users.llamaindex import AsyncLlamaIndexUser, LlamaIndexUser
from loadgen.users.pymilvus import AsyncPymilvusUser, PymilvusUser

__all__ = [
    "AsyncLangChainUser",
    "AsyncLlamaIndexUser",
    "AsyncPymilvusUser",
    "LangChainUser",
    "LlamaIndexUser",
    "PymilvusUser",
]
