"""``loadgen compare --modes dense,bm25,hybrid``: the same queries through each retrieval mode, latency and relevance
side by side (terminal table, ``modes.json``, ``modes.png``).

Each mode is one operation of the retrieval layer (``loadgen.clients.retrieval_ops``), called with the same judged
queries of the corpus, one at a time through ``MilvusClient``: latency is the store call (``perf_counter``), relevance
is recall@k and NDCG@10 against the corpus's qrels.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.config import paths
from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError

MODES: dict[str, str] = {
    "dense": "search",
    "bm25": "full_text_search",
    "sparse": "sparse_search",
    "hybrid": "hybrid_search_rrf",
    "hybrid-weighted": "hybrid_search_weighted",
}


@dataclass(frozen=True)
class ModeRow:
    mode: str
    operation: str
    queries: int
    errors: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    recall: float  # mean recall@top_k over the judged queries
    ndcg10: float


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise LoadgenError(f"--modes: unknown mode {(bad or [text])[0]!r}; choose from {', '.join(MODES)}")
    return modes


def compare_modes(settings: Settings, modes: list[str], queries: int, out: Path) -> tuple[list[ModeRow], bool]:
    """The rows, and whether this call created the collection (only then may the caller drop it)."""
    from loadgen.clients import retrieval
    from loadgen.clients.retrieval_ops import BY_NAME, Probe  # the records, called on the store directly

    # the server must serve every mode's operation (and the schema) before anything is created
    weights = {MODES[m]: 1 for m in modes}
    prepared = retrieval.prepare(replace(settings, weights=weights), progress=True)
    store = retrieval.open_sync(settings)
    try:
        judged = store.corpus.judged_queries()
        if not judged:
            raise LoadgenError("--modes needs a corpus with relevance judgements (generated, or a BEIR directory)")
        judged = judged[:queries]
        vectors = store.vectors.dense([text for _, text in judged])
        rows = []
        for mode in modes:
            op = BY_NAME[MODES[mode]]
            times, recalls, ndcgs, errors = [], [], [], 0
            for (qid, text), vector in zip(judged, vectors, strict=True):
                inputs: tuple[object, ...] = (text, vector, Probe(), qid)
                if op.name == "sparse_search":
                    inputs = (retrieval.sparse_vector(text), Probe())
                begun = time.perf_counter()
                try:
                    op.call(store, *inputs)
                except Exception:  # counted; the mode's figures cover the calls that answered
                    errors += 1
                    continue
                times.append((time.perf_counter() - begun) * 1000.0)
                probe = next(x for x in inputs if isinstance(x, Probe))
                ranked = [store.corpus.doc_ids[i] for i in probe.ids if 0 <= i < len(store.corpus)]
                recalls.append(retrieval.corpora.recall_at_k(ranked, store.corpus.qrels[qid], settings.top_k))
                ndcgs.append(retrieval.corpora.ndcg_at_k(ranked, store.corpus.qrels[qid], 10))
            t = np.array(times) if times else np.array([math.nan])
            rows.append(
                ModeRow(
                    mode, op.name, len(judged), errors, float(t.mean()), float(np.percentile(t, 50)),
                    float(np.percentile(t, 95)), float(np.mean(recalls)) if recalls else math.nan,
                    float(np.mean(ndcgs)) if ndcgs else math.nan,
                )
            )  # fmt: skip
    finally:
        store.close()
    paths.make_dir(out)
    doc = {
        "format": "milvus-loadgen/compare-modes/v1",
        "collection": prepared.name,
        "server_version": prepared.server_version,
        "corpus": store.corpus.name,
        "top_k": settings.top_k,
        "rows": [asdict(r) for r in rows],
    }
    (out / "modes.json").write_text(json.dumps(doc, indent=2) + "\n")
    chart(rows, out / "modes.png")
    return rows, prepared.created


def render(rows: list[ModeRow]) -> str:
    head = f"{'mode':<16} {'operation':<24} {'queries':>7} {'errors':>6} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8}"
    lines = [head + f" {'recall@k':>8} {'NDCG@10':>8}"]
    for r in rows:
        lines.append(
            f"{r.mode:<16} {r.operation:<24} {r.queries:>7} {r.errors:>6} {r.mean_ms:>8.2f} {r.p50_ms:>8.2f} "
            f"{r.p95_ms:>8.2f} {r.recall:>8.3f} {r.ndcg10:>8.3f}"
        )
    return "\n".join(lines)


def chart(rows: list[ModeRow], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(rows)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figure(rows: list[ModeRow]) -> Any:
    """modes.png: per retrieval mode, its latency beside its relevance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one row per mode, its name on the left (names never run into each other), legends under the charts
    shown = rows[::-1]  # the table's order, top down
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 1.8 + 0.5 * len(rows)), sharey=True)
    y = np.arange(len(shown))
    left.barh(y, [r.p50_ms for r in shown], 0.6, color="#1f77b4", label="p50")
    left.scatter([r.p95_ms for r in shown], y, color="black", marker="|", s=200, label="p95", zorder=3)
    left.set_yticks(y, [r.mode for r in shown])
    left.set(xlabel="latency (ms)", title="latency per search")
    right.barh(y + 0.2, [r.recall for r in shown], 0.4, color="#2ca02c", label="recall@k")
    right.barh(y - 0.2, [r.ndcg10 for r in shown], 0.4, color="#ff7f0e", label="NDCG@10")
    right.set_xlim(0, 1)
    right.set(xlabel="score (0 to 1)", title="relevance against the qrels")
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig
    plt.close(fig)
