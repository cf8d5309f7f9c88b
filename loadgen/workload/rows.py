"""Generated rows and query vectors: seeded, cheap, and the same shape for every client layer."""

from __future__ import annotations

from typing import Any

import numpy as np

CATEGORIES = 100  # `category < k` passes k% of rows: a filter with known selectivity
WORDS = ("vector", "milvus", "search", "latency", "shard", "replica", "segment", "index", "recall", "query")


class RowFactory:
    """Makes rows for the loadgen schema: id, vector, text, category, price."""

    def __init__(self, dim: int, metric_type: str, seed: int) -> None:
        self.dim = dim
        self.normalize = metric_type in ("COSINE", "IP")
        self.rng = np.random.default_rng(seed)
        self._queries: list[list[float]] = []
        self._next_query = 0

    def vectors(self, count: int) -> np.ndarray:
        vecs = self.rng.random((count, self.dim), dtype=np.float32) - 0.5
        if self.normalize:
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
        return vecs

    def query(self) -> list[list[float]]:
        """One fresh random query vector, as the client libraries take it (``[[...]]``): drawn from a block of 16
        made at once (a vector made per call, or a row of a numpy block turned into a list per call, cost the
        generator CPU on every search, where a list index is nothing: bench/COST.md sections 2 and 11). The block
        is small: a large one per user holds objects the garbage collector walks, and with many users its full
        collections stalled every user (bench/COST.md section 4, run D)."""
        if self._next_query >= len(self._queries):
            self._queries, self._next_query = self.vectors(16).tolist(), 0
        self._next_query += 1
        return [self._queries[self._next_query - 1]]

    def rows(self, ids: list[int] | np.ndarray) -> list[dict[str, Any]]:
        ids = [int(i) for i in ids]
        vecs = self.vectors(len(ids))
        cats = self.rng.integers(0, CATEGORIES, len(ids))
        prices = self.rng.random(len(ids)) * 100
        return [
            {
                "id": pk,
                "vector": vecs[i].tolist(),
                "text": f"{WORDS[pk % len(WORDS)]} document {pk}",
                "category": int(cats[i]),
                "price": float(prices[i]),
            }
            for i, pk in enumerate(ids)
        ]

    def new_ids(self, count: int) -> list[int]:
        """Ids for rows inserted during the run: above 2**40, far from the prefilled 0..rows-1."""
        return [int(x) for x in self.rng.integers(2**40, 2**62, count)]

    def existing_ids(self, count: int, rows: int) -> list[int]:
        return list(self.rng.integers(0, max(rows, 1), count).tolist())


def dataset_categories(ids: np.ndarray | list[int], seed: int) -> np.ndarray:
    """Category of each row of a ``--dataset`` prefill: uniform over 0..CATEGORIES-1 and a pure function of
    (id, seed), so the rows a filter keeps are known without asking the server (filtered ground truth)."""
    with np.errstate(over="ignore"):  # splitmix64: wrapping uint64 arithmetic on purpose
        x = np.asarray(ids, dtype=np.uint64) ^ np.uint64((seed * 0xD6E8FEB86659FD93) % (1 << 64))
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(CATEGORIES)).astype(np.int64)


def dataset_rows(first_id: int, vectors: np.ndarray, seed: int) -> list[dict[str, Any]]:
    """Rows for a ``--dataset`` prefill: the dataset's vectors as ids first_id.., text as generated rows have it,
    category from ``dataset_categories``, a price seeded by the first id (deterministic per batch)."""
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    cats = dataset_categories(ids, seed)
    prices = np.random.default_rng([seed, first_id]).random(len(ids)) * 100
    return [
        {
            "id": int(pk),
            "vector": vectors[i].tolist(),
            "text": f"{WORDS[int(pk) % len(WORDS)]} document {int(pk)}",
            "category": int(cats[i]),
            "price": float(prices[i]),
        }
        for i, pk in enumerate(ids)
    ]
