"""Hybrid search through langchain-milvus as a Locust user's layer (``langchain-hybrid``): its ``Milvus`` store with
the BM25 built-in function and two vector fields (``<collection>_lc_hybrid``), searched with ``similarity_search`` /
``asimilarity_search`` and the rrf or weighted ranker, scored against the corpus's qrels (recall@k, NDCG@10) as the
retrieval layer's searches are. Needs Milvus >= 2.5 or milvus-lite (BM25 functions)."""

from __future__ import annotations

from typing import Any

from loadgen.clients import retrieval_frameworks as fw
from loadgen.clients.base import Adapter, table
from loadgen.config.settings import Settings
from loadgen.milvus.collection import Prepared, release

LAYER = "langchain-hybrid"
OPERATIONS = table(*(fw.operation(op, search=i == 0) for i, op in enumerate(fw.LANGCHAIN_OPS)))


def _open(settings: Settings, _use_async: bool) -> Any:
    lc_state, _ = fw.state_classes()
    return lc_state(settings)  # an async user's gets its async client in ``attach``, on the loop


async def _attach(state: Any) -> None:
    await state.attach()


async def _aclose(state: Any) -> None:
    await state.aclose()


def prepare(settings: Settings, *, progress: bool) -> Prepared:
    from loadgen.clients.retrieval import corpus_for

    created = fw.prepare_langchain(settings, corpus_for(settings), progress=progress)
    return fw.prepared(settings, fw.lc_name(settings), created)


def drop(settings: Settings) -> bool:
    return release(settings, fw.lc_name(settings)).dropped


ADAPTER = Adapter(
    layer=LAYER, operations=OPERATIONS, open=_open, close=lambda state: state.close(), attach=_attach,
    aclose=_aclose, prepare=prepare, drop=drop, check=lambda s: fw.check(s, fw.lc_name(s), ()),
    libraries=("langchain_milvus",),
)  # fmt: skip
