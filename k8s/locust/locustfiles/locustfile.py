"""The locustfile the Kubernetes pods run (mounted from the loadgen-locustfiles ConfigMap).

Thin on purpose: the users live in the image's loadgen package. Swap the imports for the LangChain or LlamaIndex
users (loadgen.users.langchain / loadgen.users.llamaindex), or add your own file next to this one.
"""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run on the master, cleanup
from loadgen.users.pymilvus import AsyncPymilvusUser, PymilvusUser

__all__ = ["AsyncPymilvusUser", "PymilvusUser"]
