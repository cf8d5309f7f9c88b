"""The fast-path users (like Locust's ``FastHttpUser`` beside ``HttpUser``): pymilvus's own channel, each query's
request built once, the gRPC method called directly (see ``loadgen.clients.fastpath``). For capacity tests of the
server, where the generator's CPU per call decides how many workers a test needs; apps run the library users."""

from __future__ import annotations

from loadgen import clients
from loadgen.users.base import StoreUser

clients.register("pymilvus-fast", "loadgen.clients.fastpath")


class FastPymilvusUser(StoreUser):
    """search, query, get with prebuilt requests, sync (gevent-cooperative grpc)."""

    layer = "pymilvus-fast"
    use_async = False
    calls_off_hub = True


class AsyncFastPymilvusUser(StoreUser):
    """The same on the process's asyncio loop (grpc.aio), plus fanout."""

    layer = "pymilvus-fast"
    use_async = True
    calls_off_hub = True
