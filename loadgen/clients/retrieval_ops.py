"""The retrieval layer's operations, one record each: what Milvus 2.4-2.6 apps run beside a dense search.

Each operation is ``Op(name, weight, kind, inputs, call, acall, min_version)``, the shape of the operation tables of
``loadgen.clients.base``: ``inputs(store)`` builds, untimed, what one call gets; ``call(store, *inputs)`` makes one
``MilvusClient`` call and ``acall`` the same ``AsyncMilvusClient`` call, each returning hits or rows. The last input
of every operation is a ``Probe``: what the call learned beyond its count (the hits' ids for relevance, an iterator's
first page), kept per call so concurrent calls on one store never mix them up.

Iterators: ``AsyncMilvusClient`` (pymilvus 2.6.9) has no ``search_iterator`` / ``query_iterator``, so the async
flavour pages by hand the way iterator v1 does: a query pages on ``id > last`` (results come in primary-key order),
a search pages with ``offset``. Their request row times the whole result; the first page is a statistic.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

from loadgen.milvus import capabilities as cap
from loadgen.milvus.retrieval import CATEGORIES

ITERATOR_BATCH = 50  # rows per page of the iterators
ITERATOR_PAGES = 4  # pages an iterator fetches at most: bounded work per call
RRF_K = 60
DENSE_WEIGHT = 0.7  # WeightedRanker(dense, sparse)


@dataclass
class Probe:
    """Filled by the call: ids of the hits in rank order, and for iterators the first page's time."""

    ids: list[int] = field(default_factory=list)
    first_page_ms: float | None = None
    pages: int = 0


@dataclass(frozen=True)
class Op:
    name: str
    weight: int
    kind: Literal["read", "write"]
    inputs: Callable[[Any], tuple[Any, ...]]
    call: Callable[..., int]
    acall: Callable[..., Awaitable[int]]
    min_version: cap.Version
    server: str = ""  # the Milvus function one call lands on ("": an iterator, several calls)


# ---- building requests (pure: the same for both flavours) ----------------------------------------------------


def _common(st: Any) -> dict[str, Any]:
    return {"consistency_level": st.settings.consistency_level, "timeout": st.settings.timeout}


def _dense(st: Any, vector: list[float], **extra: Any) -> dict[str, Any]:
    params = {"metric_type": st.settings.metric_type, "params": extra.pop("params", {})}
    return {"data": [vector], "anns_field": "dense", "limit": st.settings.top_k, "search_params": params, **extra}


def _range_params(metric: str) -> dict[str, float]:
    """A band that keeps the nearer part of the results: similarity metrics keep (radius, range_filter] above,
    L2 keeps [range_filter, radius) below."""
    if metric == "L2":
        return {"radius": 2.0, "range_filter": 0.0}
    return {"radius": 0.2, "range_filter": 1.0}


def _hybrid_kwargs(st: Any, vector: list[float], text: str, ranker: Any) -> dict[str, Any]:
    k = st.settings.top_k
    dense = AnnSearchRequest(data=[vector], anns_field="dense", param={"metric_type": st.settings.metric_type}, limit=k)
    bm25 = AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"}, limit=k)
    return {"reqs": [dense, bm25], "ranker": ranker, "limit": k, "output_fields": ["id"], **_common(st)}


def _requests() -> dict[str, Callable[..., tuple[str, dict[str, Any]]]]:
    """op -> (store, *inputs without the probe) -> (client method, keyword arguments)."""
    return {
        "search": lambda st, q, v: ("search", {**_dense(st, v), "output_fields": ["id"], **_common(st)}),
        "full_text_search": lambda st, q, v: (
            "search",
            {
                "data": [q],
                "anns_field": "sparse",
                "limit": st.settings.top_k,
                "search_params": {"metric_type": "BM25"},
                "output_fields": ["id"],
                **_common(st),
            },
        ),
        "sparse_search": lambda st, sv: (
            "search",
            {
                "data": [sv],
                "anns_field": "learned",
                "limit": st.settings.top_k,
                "search_params": {"metric_type": "IP"},
                "output_fields": ["id"],
                **_common(st),
            },
        ),
        "hybrid_search_rrf": lambda st, q, v: ("hybrid_search", _hybrid_kwargs(st, v, q, RRFRanker(RRF_K))),
        "hybrid_search_weighted": lambda st, q, v: (
            "hybrid_search",
            _hybrid_kwargs(st, v, q, WeightedRanker(DENSE_WEIGHT, 1 - DENSE_WEIGHT)),
        ),
        "text_match_query": lambda st, word: (
            "query",
            {
                "filter": f"text_match(text, '{word}')",
                "limit": st.settings.top_k,
                "output_fields": ["id"],
                **_common(st),
            },
        ),
        "range_search": lambda st, v: (
            "search",
            {**_dense(st, v, params=_range_params(st.settings.metric_type)), "output_fields": ["id"], **_common(st)},
        ),
        "grouping_search": lambda st, v: (
            "search",
            {**_dense(st, v), "group_by_field": "category", "output_fields": ["id", "category"], **_common(st)},
        ),
        "tenant_search": lambda st, v, tenant: (
            "search",
            {**_dense(st, v), "filter": f"tenant == {tenant}", "output_fields": ["id"], **_common(st)},
        ),
    }


REQUESTS = _requests()


def _hits(result: Any, probe: Probe) -> int:
    probe.ids = [int(h["id"]) for h in result[0]] if len(result) else []
    return len(probe.ids)


def _rows(result: Any, probe: Probe) -> int:
    probe.ids = [int(r["id"]) for r in result]
    return len(probe.ids)


def _sync(op: str) -> Callable[..., int]:
    def call(st: Any, *inputs: Any) -> int:
        method, kwargs = REQUESTS[op](st, *inputs[:-1])
        result = getattr(st.client, method)(st.name, **kwargs)
        return (_rows if method == "query" else _hits)(result, inputs[-1])

    return call


def _async(op: str) -> Callable[..., Awaitable[int]]:
    async def acall(st: Any, *inputs: Any) -> int:
        method, kwargs = REQUESTS[op](st, *inputs[:-1])
        result = await getattr(st.client, method)(st.name, **kwargs)
        return (_rows if method == "query" else _hits)(result, inputs[-1])

    return acall


# ---- iterators -----------------------------------------------------------------------------------------------


def _page(probe: Probe, begun: float, rows: int) -> None:
    if probe.pages == 0:
        probe.first_page_ms = (time.perf_counter() - begun) * 1000.0
    probe.pages += 1


def _drain(it: Any, probe: Probe, begun: float) -> int:
    """Every page of a pymilvus iterator (made at ``begun``: making it is a server call), each timed; closed."""
    total = 0
    try:
        while page := it.next():
            _page(probe, begun, len(page))
            total += len(page)
    finally:
        it.close()
    return total


def search_iterator(st: Any, vector: list[float], probe: Probe) -> int:
    begun = time.perf_counter()
    with warnings.catch_warnings():  # pymilvus warns each time that the server lacks iterator v2 and uses v1
        warnings.simplefilter("ignore")
        it = st.client.search_iterator(
            st.name, data=[vector], anns_field="dense", batch_size=ITERATOR_BATCH,
            limit=ITERATOR_BATCH * ITERATOR_PAGES, search_params={"metric_type": st.settings.metric_type},
            output_fields=["id"], timeout=st.settings.timeout,
        )  # fmt: skip
    return _drain(it, probe, begun)


async def asearch_pages(st: Any, vector: list[float], probe: Probe) -> int:
    begun, total = time.perf_counter(), 0
    for n in range(ITERATOR_PAGES):
        res = await st.client.search(
            st.name, data=[vector], anns_field="dense", limit=ITERATOR_BATCH, offset=n * ITERATOR_BATCH,
            search_params={"metric_type": st.settings.metric_type}, output_fields=["id"], **_common(st),
        )  # fmt: skip
        page = res[0] if len(res) else []
        if not page:
            break
        _page(probe, begun, len(page))
        total += len(page)
        if len(page) < ITERATOR_BATCH:
            break
    return total


def query_iterator(st: Any, expr: str, probe: Probe) -> int:
    begun = time.perf_counter()
    it = st.client.query_iterator(
        st.name, batch_size=ITERATOR_BATCH, limit=ITERATOR_BATCH * ITERATOR_PAGES, filter=expr,
        output_fields=["id"], timeout=st.settings.timeout,
    )  # fmt: skip
    return _drain(it, probe, begun)


async def aquery_pages(st: Any, expr: str, probe: Probe) -> int:
    begun, total, last = time.perf_counter(), 0, -1
    for _ in range(ITERATOR_PAGES):
        page = await st.client.query(
            st.name, filter=f"({expr}) and id > {last}", limit=ITERATOR_BATCH, output_fields=["id"], **_common(st)
        )
        if not page:
            break
        _page(probe, begun, len(page))
        total += len(page)
        last = max(int(r["id"]) for r in page)
        if len(page) < ITERATOR_BATCH:
            break
    return total


# ---- the table -----------------------------------------------------------------------------------------------


def _query_text(st: Any) -> tuple[Any, ...]:
    qid, text = st.pick_query()
    return (text, st.vectors.dense([text])[0], Probe(), qid)


def _vector(st: Any) -> tuple[Any, ...]:
    _, text = st.pick_query()
    return (st.vectors.dense([text])[0], Probe())


def _with_qid(op: str) -> tuple[Callable[..., int], Callable[..., Awaitable[int]]]:
    """Calls whose inputs are (text, vector, probe, qid): the qid rides along for relevance, not to the server."""
    sync, asy = _sync(op), _async(op)

    def call(st: Any, text: str, vector: list[float], probe: Probe, qid: str) -> int:
        return sync(st, text, vector, probe)

    async def acall(st: Any, text: str, vector: list[float], probe: Probe, qid: str) -> int:
        return await asy(st, text, vector, probe)

    return call, acall


def _table() -> tuple[Op, ...]:
    ops = []
    for name, weight, need, server in (
        ("search", 4, (2, 0, 0), "Search"),
        ("full_text_search", 4, cap.FULL_TEXT_BM25, "Search"),
        ("hybrid_search_rrf", 3, cap.HYBRID_SEARCH, "HybridSearch"),
        ("hybrid_search_weighted", 1, cap.HYBRID_SEARCH, "HybridSearch"),
    ):
        call, acall = _with_qid(name)
        ops.append(Op(name, weight, "read", _query_text, call, acall, need, server))
    ops += [
        Op("sparse_search", 2, "read", lambda st: (st.query_sparse(), Probe()), _sync("sparse_search"),
           _async("sparse_search"), cap.SPARSE_VECTORS, "Search"),
        Op("text_match_query", 2, "read", lambda st: (st.pick_word(), Probe()), _sync("text_match_query"),
           _async("text_match_query"), cap.TEXT_MATCH, "Query"),
        Op("range_search", 1, "read", _vector, _sync("range_search"), _async("range_search"), cap.RANGE_SEARCH,
           "Search"),
        Op("grouping_search", 1, "read", _vector, _sync("grouping_search"), _async("grouping_search"),
           cap.GROUPING_SEARCH, "Search"),
        Op("search_iterator", 1, "read", _vector, search_iterator, asearch_pages, cap.ITERATORS),
        Op("query_iterator", 1, "read", lambda st: (f"category < {CATEGORIES // 2}", Probe()), query_iterator,
           aquery_pages, cap.ITERATORS),
        Op("tenant_search", 3, "read", lambda st: (*_vector(st)[:1], st.tenant_sampler.pick(), Probe()),
           _sync("tenant_search"), _async("tenant_search"), cap.PARTITION_KEY, "Search"),
    ]  # fmt: skip
    return tuple(ops)


OPERATIONS: tuple[Op, ...] = _table()
BY_NAME: dict[str, Op] = {op.name: op for op in OPERATIONS}
