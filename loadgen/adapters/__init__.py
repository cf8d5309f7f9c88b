"""Adapters, one module per client library, imported lazily so a missing optional extra costs nothing."""

from __future__ import annotations

import importlib
from typing import Any

from loadgen.errors import LoadgenError

# layer -> (module, sync class, async class, pip extra that provides it)
_REGISTRY: dict[str, tuple[str, str, str, str]] = {
    "pymilvus": ("loadgen.adapters.pymilvus", "PymilvusStore", "AsyncPymilvusStore", ""),
}


def load(layer: str, *, use_async: bool) -> Any:
    try:
        module, sync_cls, async_cls, extra = _REGISTRY[layer]
    except KeyError:
        raise LoadgenError(f"unknown client layer {layer!r}; choose one of {', '.join(_REGISTRY)}") from None
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'milvus-loadgen[{extra}]'" if extra else "pip install -e ."
        raise LoadgenError(f"client layer {layer!r} needs {exc.name}: {hint}") from None
    return getattr(mod, async_cls if use_async else sync_cls)
