"""Vectors of texts for the retrieval workload: a dense embedding and a "learned" sparse vector, both offline.

The ``fake`` embedding of the other layers hashes the whole text, so near-identical texts get unrelated vectors and
dense relevance against qrels would be noise. Here the offline dense vector is a bag of words: the sum of one fixed
random vector per distinct word (seeded by the word), normalized; texts that share words point the same way, so a
dense search finds documents sharing a query's words, as a (weak) real model would. ``--embedding local|openai``
use the real models (``loadgen.workload.embeddings``).

The sparse vector stands in for a learned sparse model (SPLADE-like) filled by the client: term id -> 1 + log(tf),
term ids hashed with 32-bit FNV-1a of the token (the hash milvus-lite's BM25 function uses too).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` runs: the standard analyzer of milvus-lite (Milvus's standard tokenizer splits on
    Unicode word boundaries and lower-cases, the same on plain words)."""
    return _TOKEN.findall(text.lower())


def term_id(term: str) -> int:
    h = 0x811C9DC5
    for b in term.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=65536)
def _word_vector(word: str, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, term_id(word)]).standard_normal(dim).astype(np.float32)


def bag_of_words(text: str, dim: int, seed: int = 0) -> list[float]:
    words = set(tokens(text))
    if not words:
        v = _word_vector("", dim, seed)
    else:
        v = np.sum([_word_vector(w, dim, seed) for w in sorted(words)], axis=0)
    return (v / (np.linalg.norm(v) + 1e-12)).tolist()


def sparse_vector(text: str) -> dict[int, float]:
    counts = Counter(tokens(text))
    if not counts:
        return {0: 1e-6}  # Milvus rejects an empty sparse row
    return {term_id(t): 1.0 + math.log(n) for t, n in counts.items()}


class TextVectors:
    """Dense vectors for texts: the bag of words (``fake``) or the configured real embedding."""

    def __init__(self, settings: Any) -> None:
        self.dim, self.seed, self.backend = settings.dim, settings.seed, settings.embedding
        self._embedder = None
        if settings.embedding != "fake":
            from loadgen.workload.embeddings import embedder_for

            self._embedder = embedder_for(settings)

    def dense(self, texts: list[str]) -> list[list[float]]:
        if self._embedder is not None:
            return self._embedder.embed(texts)
        return [bag_of_words(t, self.dim, self.seed) for t in texts]

    embed = dense  # the Embedder interface: the LangChain / LlamaIndex wrappers of loadgen.workload.embeddings
