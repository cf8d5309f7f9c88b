"""Hybrid and full-text search through llama-index-vector-stores-milvus as a Locust user's layer
(``llamaindex-hybrid``): ``MilvusVectorStore(enable_sparse=True)`` with the BM25 built-in function
(``<collection>_li_hybrid``), queried with ``query`` / ``aquery`` in HYBRID mode (RRF or weighted ranker) and in
TEXT_SEARCH mode (BM25), scored against the corpus's qrels (recall@k, NDCG@10) as the retrieval layer's searches are.
Needs Milvus >= 2.5; against milvus-lite, TEXT_SEARCH is refused in one line (the library's fixed request)."""

from __future__ import annotations

from typing import Any

from loadgen.clients import layer_weights
from loadgen.clients import retrieval_frameworks as fw
from loadgen.clients.base import Adapter, table
from loadgen.config.settings import Settings
from loadgen.milvus.collection import Prepared, release

LAYER = "llamaindex-hybrid"
OPERATIONS = table(*(fw.operation(op, search=i == 0) for i, op in enumerate(fw.LLAMAINDEX_OPS)))


def _chosen(settings: Settings) -> list[str]:
    """The operations this run's weights select (the server must be able to serve each)."""
    weights = layer_weights(settings.weights, {n: op.weight for n, op in OPERATIONS.items()}, fanout=False)
    return [name for name, w in weights.items() if w > 0]


def _open(settings: Settings, use_async: bool) -> Any:
    _, li_state = fw.state_classes()
    return li_state(settings, use_async, build=not use_async)  # an async one is built on the loop (``attach``)


async def _attach(state: Any) -> None:
    await state.attach()


async def _aclose(state: Any) -> None:
    await state.aclose()


def prepare(settings: Settings, *, progress: bool) -> Prepared:
    from loadgen.clients.retrieval import corpus_for

    created = fw.prepare_llamaindex(settings, corpus_for(settings), _chosen(settings), progress=progress)
    return fw.prepared(settings, fw.li_name(settings), created)


def drop(settings: Settings) -> bool:
    return release(settings, fw.li_name(settings)).dropped


ADAPTER = Adapter(
    layer=LAYER, operations=OPERATIONS, open=_open, close=lambda state: state.close(), attach=_attach,
    aclose=_aclose, prepare=prepare, drop=drop, check=lambda s: fw.check(s, fw.li_name(s), _chosen(s)),
    libraries=("llama_index.core", "llama_index.vector_stores.milvus"),
)  # fmt: skip
