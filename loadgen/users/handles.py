"""The handles of a ``VectorStoreUser`` (``loadgen.users.custom``): how each client is built, timed and closed.

Each opener returns ``(timed object, close)``, each client on a connection (alias) of its own. Sync constructors run on
gevent's thread pool, async clients are made on loadgen's loop (both directly on the loop when the handle is first
used inside an async task); the first async call of each waits, untimed, for the connection handshake
(``Handle.warm_up``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from loadgen.clients import shape
from loadgen.clients.timed import (
    LANGCHAIN_METHODS,
    LANGCHAIN_WRITES,
    LLAMAINDEX_METHODS,
    LLAMAINDEX_WRITES,
    PYMILVUS_WRITES,
    instrument,
)
from loadgen.errors import LoadgenError
from loadgen.runtime import bridge, off_hub

GUARD = 2.0  # seconds past --timeout before the greenlet stops waiting for a stuck loop
Opened = tuple[Any, Callable[[], None]]


def on_loop() -> bool:
    try:
        return asyncio.get_running_loop() is bridge.loop
    except RuntimeError:
        return False


def open_milvus(user: Any) -> Opened:
    from pymilvus import MilvusClient

    kwargs = user.settings.client_kwargs(f"loadgen-custom-{uuid.uuid4().hex}")
    client = _sync_part(lambda: MilvusClient(**kwargs))
    handle = user._new_handle("pymilvus", writes=PYMILVUS_WRITES, pymilvus=True, scoring=user._scoring())
    shape.capture_client(client, False)  # its Search answers are kept for their size
    return instrument(client, handle), client.close


def open_amilvus(user: Any) -> Opened:
    from pymilvus import AsyncMilvusClient

    kwargs = user.settings.client_kwargs(f"loadgen-custom-{uuid.uuid4().hex}")
    client = build_on_loop(user.timeout, lambda: AsyncMilvusClient(**kwargs))
    handle = user._new_handle("pymilvus", writes=PYMILVUS_WRITES, pymilvus=True, scoring=user._scoring())
    version = client.get_server_version  # the untimed original: instrument() replaces it on the instance
    handle.warm_up = lambda: version(timeout=user.timeout)
    handle.client = client  # its stub is captured after the handshake (``timed``)
    return instrument(client, handle), lambda: close_async(user.timeout, client.close())


def open_langchain(user: Any) -> Opened:
    if user.existing_collection:
        raise LoadgenError("self.langchain needs loadgen's LangChain collection (layer = 'langchain')")
    from langchain_milvus import Milvus
    from pymilvus import AsyncMilvusClient

    from loadgen.clients import langchain_setup as lc  # integration point: the adapter's store keywords

    s, alias = user.settings, f"loadgen-custom-lc-{uuid.uuid4().hex}"

    store = _sync_part(lambda: Milvus(**lc.store_kwargs(s, alias), timeout=s.timeout))

    def attach() -> None:  # on the loop, with a connection of its own (the constructor's would share the sync alias)
        store._async_milvus_client = AsyncMilvusClient(**s.client_kwargs(alias + "-async"))

    return _framework(user, "langchain", store, attach, writes=LANGCHAIN_WRITES, methods=LANGCHAIN_METHODS)


def open_llamaindex(user: Any) -> Opened:
    if user.existing_collection:
        raise LoadgenError("self.llamaindex needs loadgen's LlamaIndex collection (layer = 'llamaindex')")
    from pymilvus import AsyncMilvusClient

    from loadgen.clients import llamaindex_setup as li  # integration point: the adapter's store (own alias, no async)

    s = user.settings

    store = _sync_part(lambda: li.store_for(s))

    def attach() -> None:  # on the loop: its async client must belong to the loop that awaits it
        store._async_milvusclient = AsyncMilvusClient(**s.client_kwargs(li.new_alias()))

    return _framework(user, "llamaindex", store, attach, writes=LLAMAINDEX_WRITES, methods=LLAMAINDEX_METHODS)


def _framework(
    user: Any, layer: str, store: Any, attach: Callable[[], None], *, writes: frozenset[str], methods: frozenset[str]
) -> Opened:
    """A framework store with its async client made on the loop (``attach``), timed; closed with both clients."""
    build_on_loop(user.timeout, attach)
    handle = user._new_handle(layer, writes=writes, scoring=user._scoring())
    handle.warm_up = lambda: store.aclient.get_server_version(timeout=user.timeout)

    def close() -> None:
        try:
            close_async(user.timeout, store.aclient.close())
        finally:
            store.client.close()

    return instrument(store, handle, methods), close


def _sync_part(make: Callable[[], Any]) -> Any:
    """A library's sync constructor blocks its OS thread while it connects (up to --timeout on a frozen server): from
    a greenlet it runs on gevent's thread pool (``runtime.off_hub``), so the hub and the loop keep going. First used
    inside an async task, a handle is built right there, on the loop (once per user)."""
    return make() if on_loop() else off_hub(make)


def build_on_loop(timeout: float, build: Callable[[], Any]) -> Any:
    if on_loop():
        return build()

    async def built() -> Any:
        return build()

    return bridge.run(built(), timeout + GUARD)


def close_async(timeout: float, coro: Coroutine[Any, Any, Any]) -> None:
    if on_loop():
        asyncio.get_running_loop().create_task(coro)
    else:
        bridge.run(coro, timeout)
