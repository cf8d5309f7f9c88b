"""The fast path, sync and async: ``locust -f locustfiles/fastpath_users.py --host http://127.0.0.1:19530``."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import loadgen.locust.hooks  # noqa: F401  - options, setup once per run, cleanup
from loadgen.users.fastpath import AsyncFastPymilvusUser, FastPymilvusUser

__all__ = ["AsyncFastPymilvusUser", "FastPymilvusUser"]
