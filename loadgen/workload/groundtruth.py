"""Exact top-k ground truth for a dataset (the file's, or computed once and cached) and recall statistics.

Recall is a real metric, not a fake request: ``RecallStats`` keeps an exact histogram of per-search values (recall@k
takes only k+1 values) so low percentiles are exact, merging is addition, and the dict form is small enough to send
from workers to the master.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError
from loadgen.workload.datasets import METRICS, Dataset

DISTANCE_BUDGET = 1 << 24  # float64 cells of one queries x chunk distance matrix (128 MB)


def ground_truth(
    dataset: Dataset, k: int, metric: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """True neighbor ids, int64 [queries, k]: the file's own when they fit (same metric, at least k columns),
    else computed exactly and, with ``cache_dir``, cached under a hash of the dataset identity, k, metric and
    query count, so the next run (or a second call) loads them instead."""
    metric = check_metric(metric or dataset.metric)
    if k < 1 or k > dataset.count:
        raise LoadgenError(f"top-k {k} must be between 1 and the {dataset.count} rows of dataset {dataset.name}")
    if metric == dataset.metric:
        known = dataset.neighbors()
        if known is not None and known.shape[1] >= k:
            return np.ascontiguousarray(known[:, :k])
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"groundtruth-{cache_key(dataset, k, metric)}.npy"
        cached = load_cached(path, (dataset.num_queries, k))
        if cached is not None:
            return cached
    ids = compute_ground_truth(dataset, k, metric)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, ids)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return ids


def cache_key(dataset: Dataset, k: int, metric: str) -> str:
    text = f"{dataset.identity}|k={k}|metric={check_metric(metric)}|queries={dataset.num_queries}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def compute_ground_truth(dataset: Dataset, k: int, metric: str, chunk_rows: int | None = None) -> np.ndarray:
    """Exact top-k over the base in chunks: a running merge keeps the k best per query (argpartition), so memory is
    queries x (k + chunk), never the whole base. Distances in float64; ties at equal distance go to the lower id."""
    metric = check_metric(metric)
    queries = dataset.queries().astype(np.float64)
    if metric == "COSINE":
        queries /= row_norms(queries)
    q = len(queries)
    if chunk_rows is None:
        chunk_rows = max(1024, DISTANCE_BUDGET // max(q, 1))
    best_d = np.empty((q, 0))
    best_i = np.empty((q, 0), dtype=np.int64)
    q_sq = (queries**2).sum(axis=1)[:, None]
    for first, chunk in dataset.iter_base(chunk_rows):
        x = chunk.astype(np.float64)
        if metric == "COSINE":
            x /= row_norms(x)
        dots = queries @ x.T
        # smaller is nearer for all three: squared L2, negated inner product, negated cosine similarity
        dist = q_sq - 2 * dots + (x**2).sum(axis=1)[None, :] if metric == "L2" else -dots
        ids = np.broadcast_to(np.arange(first, first + len(x), dtype=np.int64), dist.shape)
        best_d, best_i = np.hstack([best_d, dist]), np.hstack([best_i, ids])
        if best_d.shape[1] > k:
            keep = np.argpartition(best_d, k - 1, axis=1)[:, :k]
            best_d = np.take_along_axis(best_d, keep, axis=1)
            best_i = np.take_along_axis(best_i, keep, axis=1)
    order = np.lexsort((best_i, best_d), axis=1)
    return np.ascontiguousarray(np.take_along_axis(best_i, order, axis=1))


def recall_at_k(found_ids: Sequence[int] | np.ndarray, true_ids: Sequence[int] | np.ndarray, k: int) -> float:
    """|found[:k] ∩ true[:k]| / k; fewer than k hits count as misses."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(true_ids) < k:
        raise ValueError(f"recall@{k} needs {k} true ids, got {len(true_ids)}")
    head = true_ids[:k]
    truth = set(head.tolist() if isinstance(head, np.ndarray) else map(int, head))  # tolist: one C call
    found = found_ids[:k]
    return len(truth.intersection(found.tolist() if isinstance(found, np.ndarray) else map(int, found))) / k


class RecallStats:
    """Per-search recall values as an exact histogram: count, mean, low percentiles, merge, plain-dict form."""

    def __init__(self) -> None:
        self._counts: dict[float, int] = {}

    def add(self, value: float, times: int = 1) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"recall must be within [0, 1], got {value}")
        key = round(float(value), 9)  # 2/3 computed two ways must land in one bucket
        self._counts[key] = self._counts.get(key, 0) + times

    def add_search(self, found_ids: Sequence[int] | np.ndarray, true_ids: Sequence[int] | np.ndarray, k: int) -> float:
        value = recall_at_k(found_ids, true_ids, k)
        self.add(value)
        return value

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def merge(self, other: RecallStats) -> RecallStats:
        for value, times in other._counts.items():
            self._counts[value] = self._counts.get(value, 0) + times
        return self

    @property
    def count(self) -> int:
        return sum(self._counts.values())

    @property
    def mean(self) -> float:
        n = self.count
        return math.fsum(v * c for v, c in self._counts.items()) / n if n else math.nan  # fsum: merge order-proof

    def percentile(self, p: float) -> float:
        """Nearest rank: the smallest value with at least p% of searches at or below it (NaN when empty)."""
        n = self.count
        if not n:
            return math.nan
        rank = max(1, math.ceil(p / 100 * n))
        seen = 0
        for value in sorted(self._counts):
            seen += self._counts[value]
            if seen >= rank:
                return value
        return max(self._counts)

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "mean": self.mean,
            "min": min(self._counts) if self._counts else math.nan,
            "p1": self.percentile(1),
            "p5": self.percentile(5),
            "p10": self.percentile(10),
            "p50": self.percentile(50),
        }

    def to_dict(self) -> dict[str, Any]:
        values = sorted(self._counts)
        return {"values": values, "counts": [self._counts[v] for v in values]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecallStats:
        stats = cls()
        for value, times in zip(data.get("values", []), data.get("counts", []), strict=True):
            stats.add(float(value), int(times))
        return stats

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecallStats) and self._counts == other._counts

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RecallStats(count={self.count}, mean={self.mean:.4f}, p1={self.percentile(1)})"


def check_metric(metric: str) -> str:
    if metric.upper() not in METRICS:
        raise LoadgenError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return metric.upper()


def row_norms(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms == 0, 1.0, norms)  # a zero vector has no direction: keep it zero, not NaN


def load_cached(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing or damaged cache: compute again
    return ids if ids.shape == shape and ids.dtype == np.int64 else None
