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

    def vectors(self, count: int) -> np.ndarray:
        vecs = self.rng.random((count, self.dim), dtype=np.float32) - 0.5
        if self.normalize:
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
        return vecs

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
        return [int(x) for x in self.rng.integers(0, max(rows, 1), count)]
