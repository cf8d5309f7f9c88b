"""Library names imported on first use: the framework layers' operation tables are read by the CLI, the web UI,
reports and ``--weights`` checks, and importing langchain-milvus or llama-index takes seconds (and, in a Locust
process, would block the gevent hub that long). ``Milvus = lazy("langchain_milvus", "Milvus")`` behaves like the
class once called or looked into; type checkers see the real import under ``TYPE_CHECKING``."""

from __future__ import annotations

import importlib
from typing import Any


class _Lazy:
    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name
        self._target: Any = None

    def _get(self) -> Any:
        if self._target is None:
            self._target = getattr(importlib.import_module(self._module), self._name)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._get(), attr)


def lazy(module: str, name: str) -> Any:
    return _Lazy(module, name)
