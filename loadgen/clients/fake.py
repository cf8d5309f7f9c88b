"""A store with no server behind it: the operation table's test double (in the spirit of httpx's ``MockTransport``).

Users, timing, statistics, results and checks run on it exactly as on a real layer, in a second, without Milvus: the
fast test tier uses it, and it shows what loadgen itself costs per call. Calls take ``DELAY_S`` (a cooperative sleep:
gevent's in a sync user, asyncio's in an async one); ``fail`` always fails, ``embed_search`` computes a (fake)
embedding inside the call, ``delete`` has nothing to do until the user inserted something.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

from loadgen.clients.base import Adapter, Operation, Skip, table
from loadgen.config.settings import Settings
from loadgen.milvus.collection import Prepared
from loadgen.workload.embeddings import embedder_for

DELAY_S = 0.002
_ids = itertools.count()


class FakeError(RuntimeError):
    pass


class Store:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.own: deque[int] = deque(maxlen=10_000)
        self.embedder = embedder_for(settings)


def _hits(k: int) -> list[int]:
    time.sleep(DELAY_S)  # gevent-patched in a Locust process: cooperative
    return list(range(k))


async def _ahits(k: int) -> list[int]:
    await asyncio.sleep(DELAY_S)
    return list(range(k))


def _fail(_s: Store) -> Any:
    raise FakeError("fake store: this call fails")


async def _afail(_s: Store) -> Any:
    await asyncio.sleep(DELAY_S)
    raise FakeError("fake store: this call fails")


def _delete_in(s: Store) -> tuple[Any, ...]:
    if not s.own:
        raise Skip("nothing inserted yet")
    return ([s.own.popleft() for _ in range(min(len(s.own), s.s.batch_size))],)


def _inserted(s: Store, inputs: tuple[Any, ...], ok: bool) -> None:
    if ok:
        s.own.extend(inputs[0])


def _embed_then(s: Store, k: int) -> list[int]:
    s.embedder.embed(["a query the call embeds"])  # metered: the row's embedding statistic, not its latency
    return _hits(k)


async def _aembed_then(s: Store, k: int) -> list[int]:
    s.embedder.embed(["a query the call embeds"])
    return await _ahits(k)


OPERATIONS = table(
    Operation("search", 10, "read", lambda s: (s.s.top_k,), lambda s, k: _hits(k), lambda s, k: _ahits(k),
              search=True),
    Operation("insert", 2, "write", lambda s: ([next(_ids) for _ in range(s.s.batch_size)],),
              lambda s, ids: _hits(len(ids)), lambda s, ids: _ahits(len(ids)), done=_inserted),
    Operation("delete", 1, "write", _delete_in, lambda s, ids: _hits(len(ids)), lambda s, ids: _ahits(len(ids))),
    Operation("fail", 0, "write", lambda s: (), _fail, _afail),
    Operation("embed_search", 0, "read", lambda s: (s.s.top_k,), _embed_then, _aembed_then),
)  # fmt: skip


async def _nothing(_store: Store) -> None:
    return None


ADAPTER = Adapter(
    layer="fake",
    operations=OPERATIONS,
    open=lambda settings, _use_async: Store(settings),
    close=lambda _store: None,
    attach=_nothing,
    aclose=_nothing,
    prepare=lambda settings, *, progress: Prepared("fake", owned=True, created=True, rows=0, server_version="fake"),
    drop=lambda _settings: True,
)
