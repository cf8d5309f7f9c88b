"""A store with no server behind it: the operation table's test double (in the spirit of httpx's ``MockTransport``).

Users, timing, statistics, results and checks run on it exactly as on a real layer, in a second, without Milvus: the
fast test tier uses it, and it shows what loadgen itself costs per call. Calls take ``DELAY_S`` (a cooperative sleep:
gevent's in a sync user, asyncio's in an async one); ``fail`` always fails, ``embed_search`` computes a (fake)
embedding inside the call, ``delete`` has nothing to do until the user inserted something; ``freshness_probe``
(weight 0 here) is the retrieval layer's probe over a fake client whose writes show ``LAG_QUERIES`` queries later.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

from loadgen.clients import freshness
from loadgen.clients.base import Adapter, Operation, Skip, table
from loadgen.config.settings import Settings
from loadgen.milvus.collection import Prepared
from loadgen.workload.embeddings import embedder_for

DELAY_S = 0.002
LAG_QUERIES = 3  # a write is seen by the third query of its id after it (the first two still see the old state)
_ids = itertools.count()


class FakeError(RuntimeError):
    pass


class Client:
    """Rows by id, and writes not yet visible: each query of an id counts down its pending write."""

    def __init__(self) -> None:
        self.rows: set[int] = set()
        self.pending: dict[int, tuple[str, int]] = {}  # id -> (insert | delete, queries until it shows)

    def insert(self, _name: str, rows: list[dict[str, Any]], **_: Any) -> dict[str, int]:
        time.sleep(DELAY_S)
        return self._write("insert", [int(r["id"]) for r in rows])

    def delete(self, _name: str, ids: list[int], **_: Any) -> dict[str, int]:
        time.sleep(DELAY_S)
        return self._write("delete", ids)

    def query(self, _name: str, filter: str, **_: Any) -> list[dict[str, int]]:
        time.sleep(DELAY_S)
        return self._read(int(filter.rsplit("==", 1)[1]))

    def _write(self, kind: str, ids: list[int]) -> dict[str, int]:
        for i in ids:
            self.pending[i] = (kind, LAG_QUERIES)
        return {f"{kind}_count": len(ids)}

    def _read(self, row_id: int) -> list[dict[str, int]]:
        kind, left = self.pending.get(row_id, ("", 0))
        if kind and left <= 1:
            del self.pending[row_id]
            (self.rows.add if kind == "insert" else self.rows.discard)(row_id)
        elif kind:
            self.pending[row_id] = (kind, left - 1)
        return [{"id": row_id}] if row_id in self.rows else []


class AsyncClient(Client):
    async def insert(self, _name: str, rows: list[dict[str, Any]], **_: Any) -> dict[str, int]:  # type: ignore[override]
        await asyncio.sleep(DELAY_S)
        return self._write("insert", [int(r["id"]) for r in rows])

    async def delete(self, _name: str, ids: list[int], **_: Any) -> dict[str, int]:  # type: ignore[override]
        await asyncio.sleep(DELAY_S)
        return self._write("delete", ids)

    async def query(self, _name: str, filter: str, **_: Any) -> list[dict[str, int]]:  # type: ignore[override]
        await asyncio.sleep(DELAY_S)
        return self._read(int(filter.rsplit("==", 1)[1]))


class Store:
    name = "fake"

    def __init__(self, settings: Settings, use_async: bool = False) -> None:
        self.settings = settings
        self.own: deque[int] = deque(maxlen=10_000)
        self.embedder = embedder_for(settings)
        self.client = AsyncClient() if use_async else Client()
        self.probe_ids: list[int] = []

    def new_id(self) -> int:
        return next(_ids)

    def new_row(self, row_id: int) -> dict[str, Any]:
        return {"id": row_id}


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
    return ([s.own.popleft() for _ in range(min(len(s.own), s.settings.batch_size))],)


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
    Operation("search", 10, "read", lambda s: (s.settings.top_k,), lambda s, k: _hits(k), lambda s, k: _ahits(k),
              search=True),
    Operation("insert", 2, "write", lambda s: ([next(_ids) for _ in range(s.settings.batch_size)],),
              lambda s, ids: _hits(len(ids)), lambda s, ids: _ahits(len(ids)), done=_inserted),
    Operation("delete", 1, "write", _delete_in, lambda s, ids: _hits(len(ids)), lambda s, ids: _ahits(len(ids))),
    Operation("fail", 0, "write", lambda s: (), _fail, _afail),
    Operation("embed_search", 0, "read", lambda s: (s.settings.top_k,), _embed_then, _aembed_then),
    *freshness.operations(weight=0),
)  # fmt: skip


async def _nothing(_store: Store) -> None:
    return None


ADAPTER = Adapter(
    layer="fake",
    operations=OPERATIONS,
    open=Store,
    close=lambda _store: None,
    attach=_nothing,
    aclose=_nothing,
    prepare=lambda settings, *, progress: Prepared("fake", owned=True, created=True, rows=0, server_version="fake"),
    drop=lambda _settings: True,
)
