"""The pymilvus layers and the fast path, sync and async: the users whose search takes --nq and --output-fields."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401
from loadgen.users.fastpath import AsyncFastPymilvusUser, FastPymilvusUser
from loadgen.users.pymilvus import AsyncPymilvusUser, PymilvusUser

__all__ = ["AsyncFastPymilvusUser", "AsyncPymilvusUser", "FastPymilvusUser", "PymilvusUser"]
