"""The one small interface every client-library adapter implements, in a sync and an async flavour.

An adapter knows its library's operations and nothing about timing or Locust:
- ``operations``: operation name (the library's sync method name) -> default task weight;
- ``inputs(op)``: builds, untimed, what one call of ``op`` gets;
- ``call(op, *inputs)``: makes the library call and returns how much came back (rows written or read, hits);
  it raises on failure;
- ``done(op, inputs, ok)``: bookkeeping after the call (e.g. remember inserted ids for a later delete);
- ``request_name(op)``: the library's method name for the flavour (``similarity_search`` / ``asimilarity_search``).
Sync adapters are built with ``cls(settings)``; async ones with ``await cls.open(settings)`` on the running loop.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

Rows = list[dict[str, Any]]
Vectors = list[list[float]]


class SyncStore(Protocol):
    operations: ClassVar[dict[str, int]]
    fanout_op: ClassVar[str]

    def inputs(self, op: str) -> tuple[Any, ...]: ...
    def call(self, op: str, *inputs: Any) -> int: ...
    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None: ...
    def request_name(self, op: str) -> str: ...
    def close(self) -> None: ...


class AsyncStore(Protocol):
    operations: ClassVar[dict[str, int]]
    fanout_op: ClassVar[str]

    def inputs(self, op: str) -> tuple[Any, ...]: ...
    async def call(self, op: str, *inputs: Any) -> int: ...
    def done(self, op: str, inputs: tuple[Any, ...], ok: bool) -> None: ...
    def request_name(self, op: str) -> str: ...
    async def close(self) -> None: ...
