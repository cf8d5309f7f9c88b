"""Adapters, one module per client library, imported lazily so a missing optional extra costs nothing.

Each adapter module provides a sync and an async store class (see ``base.py``) and two module functions that the
master runs once per test: ``prepare(settings, *, progress) -> collection.Prepared`` (validate, create, fill) and
``drop(settings) -> bool`` (drop the layer's collection if loadgen created it).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from loadgen.errors import LoadgenError

# layer -> (module, sync class, async class, pip extra that provides it)
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "pymilvus": ("loadgen.clients.pymilvus", "PymilvusStore", "AsyncPymilvusStore", ""),
    "langchain": ("loadgen.clients.langchain", "LangChainStore", "AsyncLangChainStore", ""),
    "llamaindex": ("loadgen.clients.llamaindex", "LlamaIndexStore", "AsyncLlamaIndexStore", ""),
}


def module(layer: str) -> ModuleType:
    try:
        name, _, _, extra = _REGISTRY[layer]
    except KeyError:
        raise LoadgenError(f"unknown client layer {layer!r}; choose one of {', '.join(_REGISTRY)}") from None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        hint = f"pip install 'milvus-loadgen[{extra}]'" if extra else "pip install -e ."
        raise LoadgenError(f"client layer {layer!r} needs {exc.name}: {hint}") from None


def load(layer: str, *, use_async: bool) -> Any:
    mod = module(layer)  # raises the one-line error for an unknown layer
    _, sync_cls, async_cls, _ = _REGISTRY[layer]
    return getattr(mod, async_cls if use_async else sync_cls)


def layers() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def operation_names(layer: str) -> tuple[str, ...]:
    """A layer's operations (its sync method names), in table order."""
    return tuple(load(layer, use_async=False).operations)


def task_names() -> frozenset[str]:
    """Every task ``--weights`` may name: every layer's operations, and the async users' ``fanout``."""
    return frozenset(op for layer in _REGISTRY for op in operation_names(layer)) | {"fanout"}


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
