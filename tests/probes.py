"""Freshness probes driven the way loadgen's users drive them (``clients.base.chain``), with every store call of
every step recorded, for the tests with and without a server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from loadgen.clients.base import Operation, chain

Row = tuple[str, list[str], dict[str, Any]]  # (request name, the store calls it made, what its context got)


def spy(client: Any, use_async: bool) -> list[str]:
    """Record every insert, delete and query ``client`` gets, in order."""
    calls: list[str] = []
    for method in ("insert", "delete", "query"):
        fn = getattr(client, method)
        if use_async:

            async def spied(*a: Any, _fn: Any = fn, _m: str = method, **k: Any) -> Any:
                calls.append(_m)
                return await _fn(*a, **k)
        else:

            def spied(*a: Any, _fn: Any = fn, _m: str = method, **k: Any) -> Any:  # type: ignore[misc]
                calls.append(_m)
                return _fn(*a, **k)

        setattr(client, method, spied)
    return calls


def _settle(store: Any, op: Operation, inputs: tuple[Any, ...], value: Any, made: list[str], use_async: bool) -> Row:
    outcome = op.outcome(store, inputs, value)
    if op.done is not None:
        op.done(store, inputs, True)
    return op.request_name(use_async), made, dict(outcome.extra or {})


def run_probe(
    ops: Mapping[str, Operation], store: Any, calls: list[str], after_write: Callable[[], None] | None = None
) -> list[Row]:
    """One sync freshness task: the write, then its queries; ``after_write`` runs right after the write's row."""
    first, rows = ops["freshness_probe"], []
    for op, inputs, pause in chain(ops, store, first, first.inputs(store)):
        time.sleep(pause)
        before = len(calls)
        value = op.call(store, *inputs)
        rows.append(_settle(store, op, inputs, value, calls[before:], False))
        if after_write is not None and op is first:
            after_write()
    return rows


async def arun_probe(ops: Mapping[str, Operation], store: Any, calls: list[str]) -> list[Row]:
    first, rows = ops["freshness_probe"], []
    for op, inputs, pause in chain(ops, store, first, first.inputs(store)):
        await asyncio.sleep(pause)
        before = len(calls)
        value = await op.async_call(store, *inputs)
        rows.append(_settle(store, op, inputs, value, calls[before:], True))
    return rows
