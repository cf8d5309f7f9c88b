"""A ``--dataset`` as a search workload: its query vectors and their true top-k ids (ground truth computed once
per process and cached on disk across processes), so every search can be scored (see ``loadgen.stats.recall``)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.workload.datasets import Dataset, open_dataset
from loadgen.workload.groundtruth import (
    DISTANCE_BUDGET,
    cache_key,
    check_metric,
    ground_truth,
    load_cached,
    recall_at_k,
    row_norms,
)
from loadgen.workload.rows import CATEGORIES, dataset_categories

DEFAULT_CACHE_DIR = "~/.cache/milvus-loadgen/groundtruth"


def open_for(settings: Settings) -> Dataset:
    """The ``--dataset`` of ``settings`` with ``--rows`` applied (0: every base vector; more than it has: all), or
    the first ``truth_rows`` when the master found a reused collection holding that many of the dataset's rows.

    Raises a one-line LoadgenError for a missing or corrupt file, or a dim other than ``--dim``."""
    rows = settings.truth_rows or settings.rows
    kw: dict[str, Any] = {
        "dim": settings.dim,
        "queries": settings.queries or None,
        "neighbors": settings.neighbors or None,
        "seed": settings.seed,
    }  # no metric: the file's neighbors are for its own (HDF5's distance, else L2); other metrics get computed ones
    if settings.dataset.startswith("synthetic:"):  # generated: --rows is how many to make (0: the default 10000)
        return open_dataset(settings.dataset, count=rows or None, **kw)
    dataset = open_dataset(settings.dataset, **kw)
    if rows and rows < dataset.count:
        dataset = open_dataset(settings.dataset, count=rows, **kw)
    return dataset


def max_category(selectivity: float) -> int:
    """``category < max_category`` is the filter a selectivity stands for (0: no filter)."""
    return round(selectivity * CATEGORIES) if selectivity else 0


def fold_top_k(
    best_d: np.ndarray,
    best_i: np.ndarray,
    queries: np.ndarray,
    q_sq: np.ndarray,
    rows: np.ndarray,
    *,
    ids: np.ndarray,
    metric: str,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of base ``rows`` (their ``ids``) folded into each query's best ``k`` so far: the distances (L2, or
    the negated dot product: IP, and COSINE on normalised ``queries``), then the ``k`` smallest kept. ``q_sq``: the
    queries' squared norms as a column."""  # fmt: skip
    x = rows.astype(np.float64)
    if metric == "COSINE":
        x /= row_norms(x)
    dots = queries @ x.T
    dist = q_sq - 2 * dots + (x**2).sum(axis=1)[None, :] if metric == "L2" else -dots
    best_d = np.hstack([best_d, dist])
    best_i = np.hstack([best_i, np.broadcast_to(ids, dist.shape)])
    if best_d.shape[1] > k:
        part = np.argpartition(best_d, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(best_d, part, axis=1)
        best_i = np.take_along_axis(best_i, part, axis=1)
    return best_d, best_i


def filtered_ground_truth(dataset: Dataset, k: int, metric: str, keep_below: int, seed: int) -> np.ndarray:
    """Exact top-k over the base rows whose category (``dataset_categories``) is below ``keep_below``: the rows a
    ``category < keep_below`` search may return. Same chunked merge and tie rule as ``compute_ground_truth``."""
    metric = check_metric(metric)
    queries = dataset.queries().astype(np.float64)
    if metric == "COSINE":
        queries /= row_norms(queries)
    q = len(queries)
    chunk_rows = max(1024, DISTANCE_BUDGET // max(q, 1))
    best_d = np.empty((q, 0))
    best_i = np.empty((q, 0), dtype=np.int64)
    q_sq = (queries**2).sum(axis=1)[:, None]
    for first, chunk in dataset.iter_base(chunk_rows):
        ids = np.arange(first, first + len(chunk), dtype=np.int64)
        keep = dataset_categories(ids, seed) < keep_below
        if not keep.any():
            continue
        best_d, best_i = fold_top_k(best_d, best_i, queries, q_sq, chunk[keep], ids=ids[keep], metric=metric, k=k)
    if best_i.shape[1] < k:
        raise LoadgenError(
            f"only {best_i.shape[1]} rows of dataset {dataset.name} pass category < {keep_below}; "
            f"--top-k is {k}: raise --filter-selectivity or --rows"
        )
    order = np.lexsort((best_i, best_d), axis=1)
    return np.ascontiguousarray(np.take_along_axis(best_i, order, axis=1))


def truth_for(
    dataset: Dataset, k: int, metric: str, *, keep_below: int = 0, seed: int = 42, cache_dir: Path | None = None
) -> np.ndarray:
    """True neighbor ids [queries, k]; ``keep_below`` > 0: only rows with ``category < keep_below`` count."""
    if not keep_below or keep_below >= CATEGORIES:
        return ground_truth(dataset, k, metric, cache_dir)
    if k < 1 or k > dataset.count:
        raise LoadgenError(f"top-k {k} must be between 1 and the {dataset.count} rows of dataset {dataset.name}")
    path = None
    if cache_dir is not None:
        text = f"{cache_key(dataset, k, metric)}|category<{keep_below}|categories-seed={seed}"
        path = cache_dir / f"groundtruth-filtered-{hashlib.sha256(text.encode()).hexdigest()[:24]}.npy"
        cached = load_cached(path, (dataset.num_queries, k))
        if cached is not None:
            return cached
    ids = filtered_ground_truth(dataset, k, metric, keep_below, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, ids)
        os.replace(tmp, path)
    return ids


@dataclass(frozen=True)
class Workload:
    """What a store needs to search a dataset and score the hits: query vectors and their true top-k ids."""

    dataset: Dataset
    queries: np.ndarray  # float32 [q, dim]
    truth: np.ndarray  # int64 [q, k]
    k: int

    def recall(self, query_index: int, hit_ids: list[int] | np.ndarray) -> float:
        return recall_at_k(hit_ids, self.truth[query_index], self.k)

    def base_from(self, start: int, batch: int) -> Iterator[tuple[int, np.ndarray]]:
        """The base vectors from row ``start`` on, as (first row, vectors) batches of at most ``batch`` rows."""
        for first, vectors in self.dataset.iter_base(batch):
            if first + len(vectors) <= start:
                continue
            skip = max(start - first, 0)
            yield first + skip, vectors[skip:]


_workloads: dict[tuple[Any, ...], Workload] = {}
_lock = threading.Lock()


def cache_dir_for(settings: Settings) -> Path:
    return Path(settings.groundtruth_cache or DEFAULT_CACHE_DIR).expanduser()


def workload_for(settings: Settings) -> Workload:
    """The dataset's queries and ground truth, computed once per process (and cached on disk across processes)."""
    key = (
        settings.dataset, settings.queries, settings.neighbors, settings.rows, settings.truth_rows, settings.dim,
        settings.seed,
        settings.metric_type, settings.top_k, settings.filter_selectivity, settings.groundtruth_cache,
    )  # fmt: skip
    with _lock:
        found = _workloads.get(key)
        if found is not None:
            return found
        dataset = open_for(settings)
        queries = dataset.queries()
        if not len(queries):
            raise LoadgenError(f"dataset {dataset.name} has no query vectors")
        truth = truth_for(
            dataset,
            settings.top_k,
            settings.metric_type,
            keep_below=max_category(settings.filter_selectivity),
            seed=settings.seed,
            cache_dir=cache_dir_for(settings),
        )
        found = _workloads[key] = Workload(dataset, queries, truth, settings.top_k)
        return found
