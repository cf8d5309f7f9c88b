"""Users of the fake store (``loadgen.clients.fake``): loadgen without a server, for the fast test tier and for
measuring what loadgen itself costs per call."""

from __future__ import annotations

from loadgen import clients
from loadgen.users.base import StoreUser

clients.register("fake", "loadgen.clients.fake")


class FakeUser(StoreUser):
    layer = "fake"
    use_async = False
    calls_off_hub = True


class AsyncFakeUser(StoreUser):
    layer = "fake"
    use_async = True
    calls_off_hub = True
