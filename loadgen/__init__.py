"""milvus-loadgen: Locust load tests for Milvus-backed retrieval apps."""

import os as _os

# grpc's core reads this once, when it is first imported (any loadgen module may import pymilvus, so it is set here,
# before all of them): otherwise every failed TLS handshake is logged at INFO and breaks our one-line errors.
# setdefault: a user's own GRPC_VERBOSITY wins.
_os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

__version__ = "0.1.0"

# The public base classes for your own locustfiles, imported on first use (PEP 562): importing them applies the
# gevent/asyncio policy and Locust's listeners, which the ``loadgen`` CLI process must never load.
_LAZY = {"VectorStoreUser": "loadgen.users.custom", "QueryVector": "loadgen.clients.timed"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadgen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
