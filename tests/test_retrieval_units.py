"""The retrieval layer's own logic without a server: version parsing and capability checks, corpora and their bad
files, relevance metrics, the tenant sampler and the merged statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadgen.errors import LoadgenError
from loadgen.milvus import capabilities as cap
from loadgen.stats.retrieval import RetrievalStats
from loadgen.workload import corpus as corpora
from loadgen.workload.tenants import TenantSampler, bucket
from loadgen.workload.text_vectors import bag_of_words, sparse_vector, term_id, tokens


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("v2.3.5-lite", (2, 3, 5)),
        ("v2.5.4", (2, 5, 4)),
        ("2.6.0", (2, 6, 0)),
        ("v2.4", (2, 4, 0)),
        ("milvus_lite-3.2.2", (2, 6, 0)),
        ("milvus_lite-3.4.0", (2, 6, 0)),  # a newer milvus-lite line keeps what the newest known one serves
        ("milvus_lite-2.0.0", None),
        ("3f2a9c1", None),
    ],
)
def test_parse_version(text: str, level: tuple[int, int, int] | None) -> None:
    assert cap.parse_version(text).level == level


def test_require_names_the_operation_its_version_and_the_servers() -> None:
    needs = [("range_search", cap.RANGE_SEARCH), ("full_text_search", cap.FULL_TEXT_BM25), ("x", cap.HYBRID_SEARCH)]
    with pytest.raises(LoadgenError) as err:
        cap.require(needs, "v2.3.5-lite", where="http://127.0.0.1:1")
    msg = str(err.value)
    assert "'full_text_search' needs Milvus >= 2.5.0" in msg and "v2.3.5-lite" in msg and "1 more" in msg
    assert "\n" not in msg and err.value.exit_code == 2
    cap.require(needs, "milvus_lite-3.2.2")  # serves all of them
    cap.require(needs, "v2.5.0")
    cap.require([("range_search", cap.RANGE_SEARCH)], "v2.3.5-lite")
    cap.require(needs, "dev-build")  # unknown: the server answers each call itself


def test_generated_corpus_is_zipf_and_its_queries_find_their_document() -> None:
    c = corpora.generated(400, seed=3, vocab=2000, queries=30)
    assert len(c) == 400 and len(c.queries) == 30 and len(c.judged_queries()) == 30
    assert c.texts == corpora.generated(400, seed=3, vocab=2000, queries=30).texts  # deterministic
    counts: dict[str, int] = {}
    for text in c.texts:
        for w in tokens(text):
            counts[w] = counts.get(w, 0) + 1
    freq = sorted(counts.values(), reverse=True)
    # rank-frequency slope on log-log axes over the head: close to -zipf (1.1), far from uniform (0)
    ranks = np.arange(1, 51)
    slope = np.polyfit(np.log(ranks), np.log(freq[:50]), 1)[0]
    assert -1.5 < slope < -0.7
    for qid, text in c.queries:
        (doc,) = c.qrels[qid]
        assert set(tokens(text)) <= set(tokens(c.texts[int(doc)]))
        assert len(set(tokens(text))) == len(tokens(text))  # distinct words: BM25 query weights are all 1


def _beir(tmp: Path, qrels: str, corpus_rows: list[dict] | None = None) -> Path:
    rows = corpus_rows or [{"_id": "d1", "title": "T", "text": "alpha beta"}, {"_id": "d2", "text": "gamma"}]
    (tmp / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "alpha"}) + "\n")
    (tmp / "qrels").mkdir()
    (tmp / "qrels" / "test.tsv").write_text(qrels)
    return tmp


def test_beir_layout(tmp_path: Path) -> None:
    c = corpora.open_corpus(str(_beir(tmp_path, "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")), 0)
    assert c.doc_ids == ["d1", "d2"] and c.texts[0] == "T alpha beta"
    assert c.queries == [("q1", "alpha")] and c.qrels == {"q1": {"d1": 2}}


@pytest.mark.parametrize(
    ("qrels", "rows", "words"),
    [
        ("q1\td9\t1\n", None, "document 'd9', which is not in the corpus"),
        ("q7\td1\t1\n", None, "query 'q7', which is not in queries.jsonl"),
        ("q1 d1\n", None, "not query-id<TAB>corpus-id<TAB>score"),
        ("q1\td1\t1\n", [{"_id": "d1", "body": "x"}], "no 'text' column"),
    ],
)
def test_bad_beir_files_are_one_line_errors(tmp_path: Path, qrels: str, rows: list[dict] | None, words: str) -> None:
    with pytest.raises(LoadgenError) as err:
        corpora.open_corpus(str(_beir(tmp_path, qrels, rows)), 0)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_jsonl_and_parquet_files(tmp_path: Path) -> None:
    jl = tmp_path / "docs.jsonl"
    jl.write_text('{"id": 7, "text": "one"}\n{"id": 8, "text": "two"}\n')
    assert corpora.open_corpus(str(jl), 0).doc_ids == ["7", "8"]
    pq.write_table(pa.table({"body": ["a", "b"]}), tmp_path / "docs.parquet")
    with pytest.raises(LoadgenError, match=r"no 'text' column \(columns: body\)"):
        corpora.open_corpus(str(tmp_path / "docs.parquet"), 0)
    c = corpora.open_corpus(str(tmp_path / "docs.parquet"), 0, text_column="body")
    assert c.texts == ["a", "b"] and c.doc_ids == ["0", "1"]
    with pytest.raises(LoadgenError, match="no such file"):
        corpora.open_corpus(str(tmp_path / "missing.jsonl"), 0)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(LoadgenError, match="line 1 is not JSON"):
        corpora.open_corpus(str(tmp_path / "bad.jsonl"), 0)


def test_relevance_metrics_by_hand() -> None:
    rel = {"a": 2, "b": 1}
    assert corpora.recall_at_k(["x", "a", "y"], rel, 3) == 0.5
    assert corpora.recall_at_k(["b", "a"], rel, 1) == 0.5
    ideal = 2 + 1 / math.log2(3)
    assert corpora.ndcg_at_k(["a", "b"], rel) == pytest.approx(1.0)
    assert corpora.ndcg_at_k(["x", "b", "a"], rel) == pytest.approx((1 / math.log2(3) + 2 / 2) / ideal)
    assert math.isnan(corpora.ndcg_at_k(["a"], {}))


def test_tenant_sampler_follows_zipf_and_buckets_by_rank() -> None:
    s = TenantSampler(20, 1.1, np.random.default_rng(0))
    probs = s.probabilities()
    assert probs[0] / probs[1] == pytest.approx(2**1.1) and sum(probs) == pytest.approx(1.0)
    picks = np.bincount([s.pick() for _ in range(20_000)], minlength=20) / 20_000
    assert np.abs(picks - probs).max() < 0.02
    assert [bucket(t, 20) for t in (0, 1, 2, 9, 10, 19)] == ["hot", "hot", "warm", "warm", "cold", "cold"]
    assert bucket(0, 1) == "hot"
    uniform = TenantSampler(4, 0.0, np.random.default_rng(0)).probabilities()
    assert uniform == pytest.approx([0.25] * 4)


def test_text_vectors() -> None:
    assert tokens("Hello, World! hello_there 42") == ["hello", "world", "hello_there", "42"]
    assert term_id("a") == 0xE40C292C  # FNV-1a 32 of b"a"
    sv = sparse_vector("a b a")
    assert sv == {term_id("a"): pytest.approx(1 + math.log(2)), term_id("b"): 1.0}
    a, b, c = (np.array(bag_of_words(t, 64)) for t in ("red apple pie", "apple pie red", "blue ocean"))
    assert a @ b == pytest.approx(1.0) and abs(a @ c) < a @ b


def test_retrieval_stats_merge_like_one_node() -> None:
    def node(values: list[float]) -> RetrievalStats:
        st = RetrievalStats()
        for v in values:
            st.record("retrieval", "full_text_search", v, {"ndcg@10": v / 10, "relevance_recall": 1.0})
            st.record("retrieval", "tenant_search", v, {"tenant_bucket": "hot"})
            st.record("retrieval", "query_iterator", 9.0, {"first_page_ms": v})
            ctx = {"freshness_ms": v, "write": "insert", "consistency_level": "Bounded"}
            st.record("retrieval", "freshness_probe", 99.0, ctx)
        return st

    merged = RetrievalStats()
    for part in ([1.0, 2.0], [3.0, 5.0]):
        merged.merge_payload(json.loads(json.dumps(node(part).to_payload())))
    assert merged.results() == node([1.0, 2.0, 3.0, 5.0]).results()
    res = merged.results()
    assert res["relevance"]["retrieval full_text_search"]["ndcg@10"]["mean"] == pytest.approx(0.275)
    assert res["tenant"]["retrieval hot tenant_search"]["count"] == 4
    assert res["freshness"]["insert Bounded retrieval"]["max_ms"] == pytest.approx(5.0, rel=1e-3)
    assert res["first_page"]["retrieval query_iterator"]["p50_ms"] == pytest.approx(2.0, rel=1e-3)


def test_the_runs_operations_declare_their_versions() -> None:
    from loadgen.clients import retrieval
    from loadgen.config.settings import Settings

    every = dict(retrieval.needs(Settings(uri="http://127.0.0.1:1")))
    assert every["full_text_search"] == (2, 5, 0) and every["hybrid_search_rrf"] == (2, 4, 0)
    assert every["range_search"] == (2, 3, 0) and "freshness_probe" not in every  # any Milvus 2.x
    chosen = retrieval.needs(Settings(uri="http://127.0.0.1:1", weights={"range_search": 1, "sparse_search": 0}))
    assert chosen == [("range_search", (2, 3, 0))]
    ops = retrieval.ADAPTER.operations
    assert all(ops[name].needs == cap.show(level) for name, level in every.items())
