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
