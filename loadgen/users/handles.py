"""The handles of a ``VectorStoreUser`` (``loadgen.users.custom``): how each client is built, timed and closed.

Each opener returns ``(timed object, close)``. Clients that need an event loop are built on loadgen's loop (directly
when the caller is already on it, else through the bridge), each with a connection (alias) of its own; the first async
call of each waits, untimed, for the connection handshake (``Handle.warm_up``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from loadgen.clients.timed import (
    LANGCHAIN_METHODS,
    LANGCHAIN_WRITES,
    LLAMAINDEX_METHODS,
    LLAMAINDEX_WRITES,
    PYMILVUS_WRITES,
    instrument,
)
from loadgen.errors import LoadgenError
from loadgen.runtime import bridge

GUARD = 2.0  # seconds past --timeout before the greenlet stops waiting for a stuck loop
Opened = tuple[Any, Callable[[], None]]


def on_loop() -> bool:
    try:
        return asyncio.get_running_loop() is bridge.loop
    except RuntimeError:
        return False


def open_milvus(user: Any) -> Opened:
    from pymilvus import MilvusClient

    client = MilvusClient(**user.settings.client_kwargs(f"loadgen-custom-{uuid.uuid4().hex}"))
    handle = user._new_handle("pymilvus", writes=PYMILVUS_WRITES, pymilvus=True, scoring=user._scoring())
    return instrument(client, handle), client.close


def open_amilvus(user: Any) -> Opened:
    from pymilvus import AsyncMilvusClient

    kwargs = user.settings.client_kwargs(f"loadgen-custom-{uuid.uuid4().hex}")
    client = build_on_loop(user.timeout, lambda: AsyncMilvusClient(**kwargs))
    handle = user._new_handle("pymilvus", writes=PYMILVUS_WRITES, pymilvus=True, scoring=user._scoring())
    version = client.get_server_version  # the untimed original: instrument() replaces it on the instance
    handle.warm_up = lambda: version(timeout=user.timeout)
    return instrument(client, handle), lambda: close_async(user.timeout, client.close())


def open_langchain(user: Any) -> Opened:
    if user.existing_collection:
        raise LoadgenError("self.langchain needs loadgen's LangChain collection (layer = 'langchain')")
    from langchain_milvus import Milvus
    from pymilvus import AsyncMilvusClient

    from loadgen.clients import langchain as lc  # integration point: the adapter's store keywords

    s, alias = user.settings, f"loadgen-custom-lc-{uuid.uuid4().hex}"

    def build() -> Any:  # on the loop: the constructor makes an AsyncMilvusClient, bound to the running loop
        store = Milvus(**lc._store_kwargs(s, alias), timeout=s.timeout)
        store._async_milvus_client = AsyncMilvusClient(**s.client_kwargs(alias + "-async"))  # its own connection
        return store

    store = build_on_loop(user.timeout, build)
    handle = user._new_handle("langchain", writes=LANGCHAIN_WRITES)
    handle.warm_up = lambda: store.aclient.get_server_version(timeout=user.timeout)

    def close() -> None:
        try:
            close_async(user.timeout, store.aclient.close())
        finally:
            store.client.close()

    return instrument(store, handle, LANGCHAIN_METHODS), close


def open_llamaindex(user: Any) -> Opened:
    if user.existing_collection:
        raise LoadgenError("self.llamaindex needs loadgen's LlamaIndex collection (layer = 'llamaindex')")
    from pymilvus import AsyncMilvusClient

    from loadgen.clients import llamaindex as li  # integration point: the adapter's store (own alias, no async)

    s = user.settings

    def build() -> Any:  # on the loop: its async client must belong to the loop that awaits it
        store = li._store(s)
        store._async_milvusclient = AsyncMilvusClient(**s.client_kwargs(li._alias()))
        return store

    store = build_on_loop(user.timeout, build)
    handle = user._new_handle("llamaindex", writes=LLAMAINDEX_WRITES)
    handle.warm_up = lambda: store.aclient.get_server_version(timeout=user.timeout)

    def close() -> None:
        try:
            close_async(user.timeout, store.aclient.close())
        finally:
            store.client.close()

    return instrument(store, handle, LLAMAINDEX_METHODS), close


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
