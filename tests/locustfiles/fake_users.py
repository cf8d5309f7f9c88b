"""The fast tier's locustfile: loadgen's users over the fake store (no server)."""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
from loadgen.users.fake import AsyncFakeUser, FakeUser

__all__ = ["AsyncFakeUser", "FakeUser"]
