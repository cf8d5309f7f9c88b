"""Adapters, one module per client library, each a table of operations (``base.Adapter``), imported lazily so a
layer that is not used costs nothing (importing langchain-milvus or llama-index takes seconds)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loadgen.errors import LoadgenError

if TYPE_CHECKING:
    from loadgen.clients.base import Adapter

_MODULES = {"pymilvus": "loadgen.clients.pymilvus", "langchain": "loadgen.clients.langchain",
            "llamaindex": "loadgen.clients.llamaindex",
            # BM25, sparse, hybrid, range, grouping, iterators, text_match, tenants, freshness
            "retrieval": "loadgen.clients.retrieval",
            # hybrid and full-text search through the frameworks' own stores
            "langchain-hybrid": "loadgen.clients.langchain_hybrid",
            "llamaindex-hybrid": "loadgen.clients.llamaindex_hybrid"}  # fmt: skip


def register(layer: str, module: str) -> None:
    """Another adapter (a module with an ``ADAPTER``), e.g. the fake store of the fast test tier."""
    _MODULES[layer] = module


def layers() -> tuple[str, ...]:
    return tuple(_MODULES)


def adapter(layer: str) -> Adapter:
    try:
        name = _MODULES[layer]
    except KeyError:
        raise LoadgenError(f"unknown client layer {layer!r}; choose one of {', '.join(_MODULES)}") from None
    try:
        found: Adapter = importlib.import_module(name).ADAPTER
    except ImportError as exc:
        raise LoadgenError(f"client layer {layer!r} needs {exc.name}: pip install -e .") from None
    return found


def check_server(layer: str, weights: dict[str, int], version: str, where: str) -> None:
    """The server serves every operation of ``layer`` these weights select, then the layer's own needs (a schema):
    else one line naming the operation, the release it needs and the server's (``milvus.capabilities``)."""
    from loadgen.milvus import capabilities

    table = adapter(layer)
    chosen = layer_weights(weights, {name: op.weight for name, op in table.operations.items()}, fanout=False)
    level = capabilities.parse_version
    ops = [(n, v) for n, w in chosen.items() if w > 0 and table.operations[n].needs
           if (v := level(table.operations[n].needs).level) is not None]  # fmt: skip
    capabilities.require(ops, version, where=where)
    own = [(what, v) for what, needs in table.needs if (v := level(needs).level) is not None]
    capabilities.require(own, version, where=where)


def preload(layer: str) -> None:
    """Import what the layer's stores need now (see ``Adapter.libraries``)."""
    for module in adapter(layer).libraries:
        importlib.import_module(module)


def operation_names(layer: str) -> tuple[str, ...]:
    """A layer's operations (its sync method names), in table order."""
    return tuple(adapter(layer).operations)


def task_names() -> frozenset[str]:
    """Every task ``--weights`` may name: every layer's operations, and the async users' ``fanout``."""
    return frozenset(op for layer in _MODULES for op in operation_names(layer)) | {"fanout"}


def check_task_names(weights: dict[str, int], stream_rates: dict[str, float]) -> None:
    """``--weights`` and ``--stream-rates`` name known tasks (checked here: the config layer does not know them)."""
    if not weights and not stream_rates:
        return
    known = task_names()
    for name in weights:
        if name not in known:
            raise LoadgenError(f"--weights: unknown task {name!r}; tasks are {', '.join(sorted(known))}")
    ops = known - {"fanout"}
    for name in stream_rates:
        if name not in ops:
            raise LoadgenError(f"--stream-rates: unknown operation {name!r}; operations are {', '.join(sorted(ops))}")


def layer_weights(weights: dict[str, int], defaults: dict[str, int], fanout: bool) -> dict[str, int]:
    """The weights one user class runs with: its defaults, unless ``--weights`` names any of its tasks, in which
    case the named ones get their weight and the others 0. ``fanout`` adds the async fan-out task (default 1)."""
    own = {**defaults, **({"fanout": 1} if fanout else {})}
    if not any(name in weights for name in own):
        return own
    return {name: weights.get(name, 0) for name in own}


def class_weights(layer: str, use_async: bool, weights: dict[str, int]) -> dict[str, int]:
    """The weight of each task of a store user class of ``layer`` (its operations, and ``fanout`` if async)."""
    defaults = {name: op.weight for name, op in adapter(layer).operations.items()}
    return layer_weights(weights, defaults, fanout=use_async)


def check_classes(
    classes: Sequence[tuple[str, str, bool]], weights: dict[str, int], stream_rates: dict[str, float], open_model: bool
) -> None:
    """Store user classes, as (name, layer, async), that a test will run: ``--weights`` gives weight only to their
    tasks (a 0 turns off what they may not have), ``--stream-rates`` names only their operations, and each of
    them has something to do. One line each, before anything is prepared."""
    if not classes:
        return
    ordered = sorted(classes)
    own = {name: class_weights(layer, use_async, weights) for name, layer, use_async in ordered}
    tasks = {task for w in own.values() for task in w}
    names = ", ".join(name for name, _, _ in ordered)
    for task, weight in weights.items():
        if weight and task not in tasks:
            raise LoadgenError(f"--weights: {task!r} is no task of {names}; their tasks: {', '.join(sorted(tasks))}")
    for op in stream_rates:
        if op not in tasks - {"fanout"}:
            raise LoadgenError(f"--stream-rates: {op!r} is no operation of {names}")
    for name, layer, use_async in ordered:
        check_class(name, layer, use_async, weights, open_model)


def check_class(name: str, layer: str, use_async: bool, weights: dict[str, int], open_model: bool) -> None:
    """One store user class has something to do under ``--weights`` (and, in the open model, a single call)."""
    own = class_weights(layer, use_async, weights)
    if not any(own.values()):
        raise LoadgenError(
            f"{name}: every task has weight 0 in --weights; give one of its tasks a weight "
            f"(`loadgen operations` lists the {layer} layer's), or leave the class out"
        )
    if open_model and not any(w for task, w in own.items() if task != "fanout"):
        raise LoadgenError(f"{name}: --arrival-rate needs a task other than fanout in --weights")


_FLAVOURS = {"": "sync", "-async": "async", "-async-fanout": "fanout"}


def row_operation(request_type: str, name: str) -> tuple[str, str, str] | None:
    """Which operation a request row measured: (layer, operation, flavour: sync, async or fanout), read off the
    tables (so sync and async twins pair up, and sizing knows reads from writes); None for a row no table makes."""
    for suffix in sorted(_FLAVOURS, key=len, reverse=True):
        layer = request_type.removesuffix(suffix) if suffix else request_type
        if (suffix and not request_type.endswith(suffix)) or layer not in _MODULES:
            continue
        use_async = suffix != ""
        for op in adapter(layer).operations.values():
            if op.request_name(use_async) == name:
                return layer, op.name, _FLAVOURS[suffix]
        return None
    return None


def server_function(request_type: str, name: str) -> str | None:
    """The Milvus function behind one of our request rows (``pymilvus-async`` ``search`` -> ``Search``), read off
    the operation's record (``Operation.server``); None for a row no table makes, or one that is not one call."""
    found = row_operation(request_type, name)
    return (adapter(found[0]).operations[found[1]].server or None) if found else None


def row_kind(request_type: str, name: str) -> str | None:
    """``read`` or ``write`` for a request row an operation table makes, else None."""
    found = row_operation(request_type, name)
    return adapter(found[0]).operations[found[1]].kind if found else None
