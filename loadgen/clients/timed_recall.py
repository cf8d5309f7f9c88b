"""Recall for the timed handles of your own locustfiles (``loadgen.clients.timed``): which calls ran one of a
``--dataset``'s queries against a collection that holds its rows, and how many of the true neighbors came back.

- pymilvus: ``search`` of ``QueryVector``s (``VectorStoreUser.query_vector()``, or ``query_vectors()``: ``--nq`` of
  them) in the dataset's collection, each scored against its own truth (one recall per query vector);
- LangChain: the k-NN searches (``similarity_search`` and its ``with_score``/``by_vector`` twins, sync and async)
  of a dataset query's text (``VectorStoreUser.query_text()``) or vector, on loadgen's LangChain collection, which
  holds the dataset's rows (pk ``"i"``);
- LlamaIndex: ``query``/``aquery`` whose query embedding is a dataset query's (what a retriever or query engine
  over the store sends for ``query_text()``, through ``embed_model``), on loadgen's LlamaIndex collection (``"lg-i"``).

A search under another filter than the one the ground truth was computed for is not scored. MMR is not either: its
hits are diversified on purpose, not the k nearest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loadgen.clients import shape
from loadgen.workload import dataset_texts
from loadgen.workload.groundtruth import recall_at_k

_LC_BY_TEXT = frozenset({"similarity_search", "similarity_search_with_score"})
_LC_BY_VECTOR = frozenset({"similarity_search_by_vector", "similarity_search_with_score_by_vector"})
LANGCHAIN_DEFAULT_K = 4  # langchain's own default ``k``


@dataclass(frozen=True)
class Scoring:
    """What a search needs to be scored: the dataset's collection, true ids per query, k, the filter of the truth,
    and the query vectors (to know a query by its embedding)."""

    collection: str
    truth: Any  # numpy int64 [queries, k]
    k: int
    filter: str = ""  # the filter the ground truth was computed under (--filter-selectivity), "" for none
    queries: Any = None  # numpy float32 [queries, dim]
    _by_vector: dict[bytes, int] = field(default_factory=dict, compare=False, repr=False)

    def index_of(self, vector: Any) -> int | None:
        """The dataset query ``vector`` is (a ``QueryVector`` says so itself), else None."""
        known = getattr(vector, "query_index", None)
        if known is not None:
            return int(known)
        if self.queries is None or vector is None:
            return None
        if not self._by_vector:
            self._by_vector.update({row.tobytes(): j for j, row in enumerate(np.asarray(self.queries, np.float32))})
        return self._by_vector.get(np.asarray(vector, dtype=np.float32).tobytes())

    def score(self, j: int | None, ids: list[int], limit: int) -> float | None:
        k = min(limit, self.k)
        return recall_at_k(ids, self.truth[j], k) if j is not None and k >= 1 else None


def pymilvus_recall(
    s: Scoring, method: str, args: tuple[Any, ...], kw: dict[str, Any], result: Any
) -> float | list[float] | None:
    """One recall per query vector of the search that is a dataset query (``query_vectors()``: several per call),
    each against its own truth; None when none is."""
    if method != "search" or (kw.get("collection_name") or (args[0] if args else None)) != s.collection:
        return None
    data = kw.get("data", args[1] if len(args) > 1 else None)
    if not isinstance(data, list) or not data or (kw.get("filter") or "") != s.filter or not result:
        return None  # the ground truth holds for the dataset's own filter (or none) only
    limit = int(kw.get("limit", 10))
    out = [s.score(int(q.query_index), [int(hit["id"]) for hit in hits], limit)
           for q, hits in zip(data, result, strict=False) if getattr(q, "query_index", None) is not None]  # fmt: skip
    return shape.one_or_list([r for r in out if r is not None])


def langchain_recall(s: Scoring, method: str, args: tuple[Any, ...], kw: dict[str, Any], result: Any) -> float | None:
    name = method[1:] if method.startswith("a") and method[1:] in _LC_BY_TEXT | _LC_BY_VECTOR else method
    query = kw.get("query", kw.get("embedding", args[0] if args else None))
    if name in _LC_BY_TEXT:
        j = dataset_texts.query_index(query) if isinstance(query, str) else None
    elif name in _LC_BY_VECTOR:
        j = s.index_of(query)
    else:
        return None
    if j is None or (kw.get("expr") or "") != s.filter:
        return None
    docs = [hit[0] if isinstance(hit, tuple) else hit for hit in result or []]
    ids = [dataset_texts.hit_index(getattr(d, "metadata", {}).get("pk")) for d in docs]
    return s.score(j, ids, int(kw.get("k", args[1] if len(args) > 1 else LANGCHAIN_DEFAULT_K)))


def llamaindex_recall(s: Scoring, method: str, args: tuple[Any, ...], kw: dict[str, Any], result: Any) -> float | None:
    query = kw.get("query", args[0] if args else None)
    if method not in ("query", "aquery") or query is None or s.filter:
        return None  # llama-index filters are its own objects: only unfiltered searches are scored
    if getattr(query, "filters", None) is not None or kw.get("string_expr"):
        return None
    j = s.index_of(getattr(query, "query_embedding", None))
    ids = [dataset_texts.hit_index(i, "lg-") for i in getattr(result, "ids", None) or []]
    return s.score(j, ids, int(getattr(query, "similarity_top_k", 1) or 1))


RECALL = {"pymilvus": pymilvus_recall, "langchain": langchain_recall, "llamaindex": llamaindex_recall}
