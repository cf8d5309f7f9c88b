"""Text corpora for full-text, sparse and hybrid workloads: documents, queries and (optionally) relevance judgements.

- ``generated`` (the default, offline): documents whose words follow a Zipf law over a synthetic vocabulary, as words
  in real text do (a few very common words, a long tail of rare ones), so BM25's IDF weighting has something to do;
  each query is a few distinct, rarer words of one document, which is its one relevant document (qrels grade 1).
- a JSONL or Parquet file with a text column (``text``; ids from ``_id`` or ``id`` if present): documents only.
- a BEIR directory: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``; ``test.tsv`` preferred).

Documents get the primary keys 0..n-1 in file order; ``doc_ids`` maps them back to the corpus's own ids.
Bad files (no text column, qrels naming a document or query the corpus lacks) are one-line ``LoadgenError`` s.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError

GENERATED = "generated"
TEXT_COLUMN = "text"
MAX_TEXT_CHARS = 4096  # the text field's max_length in loadgen's retrieval schema; longer documents are cut
_SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "do", "fa", "gu", "zi", "be", "wo", "ny")


@dataclass(frozen=True)
class Corpus:
    name: str
    doc_ids: list[str]  # the corpus's own id of primary key i
    texts: list[str]
    queries: list[tuple[str, str]] = field(default_factory=list)  # (query id, text)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # query id -> {doc id: grade > 0}

    def __len__(self) -> int:
        return len(self.texts)

    def judged_queries(self) -> list[tuple[str, str]]:
        """Queries with at least one relevant document: the ones relevance is measured on."""
        return [(qid, text) for qid, text in self.queries if self.qrels.get(qid)]


# ---- generated ---------------------------------------------------------------------------------------------


def vocabulary(size: int) -> list[str]:
    """``size`` distinct pronounceable words, the same for every run (no randomness: base-16 syllable numerals)."""
    words = []
    for i in range(size):
        n, parts = i, []
        while True:
            parts.append(_SYLLABLES[n % len(_SYLLABLES)])
            n //= len(_SYLLABLES)
            if n == 0:
                break
        words.append("".join(parts) + ("x" if len(parts) == 1 else ""))  # no one-syllable words: "ka" vs "kax"
    return words


def generated(
    docs: int,
    seed: int = 42,
    *,
    vocab: int = 5000,
    zipf: float = 1.1,
    mean_words: int = 30,
    queries: int = 100,
    query_words: int = 3,
) -> Corpus:
    """Zipf-distributed words over ``vocab`` synthetic words; document lengths vary around ``mean_words``."""
    if docs < 1:
        raise LoadgenError(f"a generated corpus needs at least 1 document, got {docs}")
    rng = np.random.default_rng(seed)
    words = vocabulary(vocab)
    weights = 1.0 / np.arange(1, vocab + 1) ** zipf
    probs = weights / weights.sum()
    lengths = np.clip(rng.poisson(mean_words, docs), 3, None)
    drawn = rng.choice(vocab, size=int(lengths.sum()), p=probs)
    texts, start = [], 0
    for n in lengths:
        texts.append(" ".join(words[t] for t in drawn[start : start + n]))
        start += n
    doc_ids = [str(i) for i in range(docs)]
    qs: list[tuple[str, str]] = []
    qrels: dict[str, dict[str, int]] = {}
    picks = rng.choice(docs, size=min(queries, docs), replace=False)
    for qi, d in enumerate(picks):
        terms = sorted({int(t) for t in drawn[int(lengths[:d].sum()) : int(lengths[: d + 1].sum())]}, reverse=True)
        chosen = terms[:query_words]  # the document's rarest words (higher rank = rarer): a findable query
        qid = f"q{qi}"
        qs.append((qid, " ".join(words[t] for t in chosen)))
        qrels[qid] = {doc_ids[int(d)]: 1}
    return Corpus(f"{GENERATED}:{docs}", doc_ids, texts, qs, qrels)


# ---- files -------------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise LoadgenError(f"{path}: line {n} is not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise LoadgenError(f"{path}: line {n} is not a JSON object")
                rows.append(row)
    except OSError as exc:
        raise LoadgenError(f"cannot read {path}: {exc.strerror or exc}") from None
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_table(path).to_pylist())
    except Exception as exc:  # pyarrow raises several kinds for a bad file
        raise LoadgenError(f"{path}: not a readable Parquet file: {' '.join(str(exc).split())}") from None


def _documents(rows: list[dict[str, Any]], path: Path, text_column: str) -> tuple[list[str], list[str]]:
    if not rows:
        raise LoadgenError(f"{path}: no documents")
    if not any(text_column in row for row in rows[:1]):
        columns = ", ".join(sorted(rows[0])) or "none"
        raise LoadgenError(f"{path}: no {text_column!r} column (columns: {columns})")
    ids, texts = [], []
    for i, row in enumerate(rows):
        text = row.get(text_column)
        if not isinstance(text, str):
            raise LoadgenError(f"{path}: document {i} has no text in column {text_column!r}")
        title = row.get("title")
        full = f"{title} {text}" if isinstance(title, str) and title else text
        ids.append(str(row.get("_id", row.get("id", i))))
        texts.append(full[:MAX_TEXT_CHARS])
    if len(set(ids)) != len(ids):
        raise LoadgenError(f"{path}: document ids are not unique")
    return ids, texts


def load_file(path: Path, text_column: str = TEXT_COLUMN) -> Corpus:
    rows = _read_parquet(path) if path.suffix == ".parquet" else _read_jsonl(path)
    ids, texts = _documents(rows, path, text_column)
    return Corpus(path.name, ids, texts)


def _qrels_file(folder: Path) -> Path:
    qdir = folder / "qrels"
    tsvs = sorted(qdir.glob("*.tsv")) if qdir.is_dir() else []
    if not tsvs:
        raise LoadgenError(f"{folder}: a BEIR corpus needs qrels/<split>.tsv (e.g. qrels/test.tsv)")
    return next((p for p in tsvs if p.name == "test.tsv"), tsvs[0])


def load_qrels(path: Path, doc_ids: set[str], query_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if not line.strip() or (n == 1 and len(parts) == 3 and not parts[2].strip().lstrip("-").isdigit()):
            continue  # blank, or the header (query-id corpus-id score)
        if len(parts) != 3 or not parts[2].strip().lstrip("-").isdigit():
            raise LoadgenError(f"{path}: line {n} is not query-id<TAB>corpus-id<TAB>score")
        qid, did, grade = parts[0].strip(), parts[1].strip(), int(parts[2])
        if did not in doc_ids:
            raise LoadgenError(f"{path}: line {n} names document {did!r}, which is not in the corpus")
        if qid not in query_ids:
            raise LoadgenError(f"{path}: line {n} names query {qid!r}, which is not in queries.jsonl")
        if grade > 0:
            qrels.setdefault(qid, {})[did] = grade
    return qrels


def load_beir(folder: Path) -> Corpus:
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise LoadgenError(f"{folder}: a BEIR corpus needs {name}")
    corpus_path = folder / "corpus.jsonl"
    ids, texts = _documents(_read_jsonl(corpus_path), corpus_path, TEXT_COLUMN)
    qpath = folder / "queries.jsonl"
    queries = [(str(q.get("_id", i)), q.get("text")) for i, q in enumerate(_read_jsonl(qpath))]
    bad = next((qid for qid, text in queries if not isinstance(text, str)), None)
    if bad is not None:
        raise LoadgenError(f"{qpath}: query {bad!r} has no 'text'")
    qrels = load_qrels(_qrels_file(folder), set(ids), {qid for qid, _ in queries})
    return Corpus(folder.name, ids, texts, [(q, str(t)) for q, t in queries], qrels)


def corpus_path(spec: str) -> Path | None:
    """The file or BEIR directory ``spec`` names (None: ``generated``), refused in one line if it is neither: what
    ``open_corpus`` checks first, without reading anything (a preflight check)."""
    if not spec or spec == GENERATED:
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if not path.is_file():
        raise LoadgenError(f"--corpus {spec}: no such file or directory (or use 'generated')")
    if path.suffix not in (".jsonl", ".json", ".parquet"):
        raise LoadgenError(f"--corpus {spec}: expected a .jsonl or .parquet file, or a BEIR directory")
    return path


def open_corpus(spec: str, docs: int, seed: int = 42, text_column: str = TEXT_COLUMN) -> Corpus:
    """``spec``: ``generated`` (``docs`` documents), a BEIR directory, or a ``.jsonl`` / ``.parquet`` file."""
    path = corpus_path(spec)
    if path is None:
        return generated(max(docs, 1), seed)
    return load_beir(path) if path.is_dir() else load_file(path, text_column)


# ---- relevance ---------------------------------------------------------------------------------------------


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    """Share of the relevant documents found in the first ``k`` (BEIR's / trec_eval's recall@k)."""
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel.intersection(ranked[:k])) / len(rel) if rel else math.nan


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """NDCG@k with linear gains (trec_eval's ndcg_cut, which BEIR reports)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else math.nan
