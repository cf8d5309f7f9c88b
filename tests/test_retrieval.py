"""The retrieval layer against milvus-lite (the one engine here that serves Milvus 2.5/2.6 features): every operation,
sync and async, answers with 0 failures; relevance, first pages, tenant buckets and freshness come back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import replace

import pytest
from probes import Row, arun_probe, run_probe, spy

from loadgen.clients import retrieval
from loadgen.clients.retrieval_ops import OPERATIONS
from loadgen.config.settings import Settings
from loadgen.milvus.server import EmbeddedMilvus, ServerInfo

pytestmark = pytest.mark.milvus
OPS = [op.name for op in OPERATIONS]


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    server = EmbeddedMilvus(tmp_path_factory.mktemp("lite"), engine="lite", die_with_parent=True)
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture(scope="module")
def settings(lite: ServerInfo) -> Settings:
    s = Settings(uri=lite.uri, collection="t15", dim=16, rows=200, top_k=5, tenants=4, consistency_level="Strong")
    prepared = retrieval.prepare(s, progress=False)
    assert prepared.created and prepared.rows == 200
    return s


def _run_sync(settings: Settings, op: str, times: int = 2) -> list[dict]:
    store = retrieval.open_sync(settings)
    seen = []
    try:
        for _ in range(times):
            inputs = store.inputs(op)
            n = store.call(op, *inputs)
            assert n >= 0
            seen.append({"n": n, **store.observe(op, inputs)})
    finally:
        store.close()
    return seen


def _run_async(settings: Settings, op: str, times: int = 2) -> list[dict]:
    async def go() -> list[dict]:
        store = await retrieval.AsyncRetrievalStore.open(settings)
        seen = []
        try:
            for _ in range(times):
                inputs = store.inputs(op)
                n = await store.call(op, *inputs)
                seen.append({"n": n, **store.observe(op, inputs)})
        finally:
            await store.close()
        return seen

    return asyncio.run(go())


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("op", OPS)
def test_every_operation_answers(settings: Settings, op: str, flavour: str) -> None:
    seen = (_run_sync if flavour == "sync" else _run_async)(settings, op)
    assert len(seen) == 2
    if op in ("search", "full_text_search", "hybrid_search_rrf", "hybrid_search_weighted", "grouping_search"):
        assert all(s["n"] > 0 for s in seen)
    if op in retrieval.RELEVANCE_OPS:
        assert all(0.0 <= s["ndcg@10"] <= 1.0 and 0.0 <= s["relevance_recall"] <= 1.0 for s in seen)
    if op.endswith("_iterator"):
        assert all(s["n"] > 0 and s["first_page_ms"] > 0 and s["pages"] >= 1 for s in seen)
    if op == "tenant_search":
        assert all(s["tenant_bucket"] in ("hot", "warm", "cold") for s in seen)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_freshness_probe_is_a_write_row_then_a_row_per_query(settings: Settings, flavour: str) -> None:
    """Against the server: the write's row is one insert (or delete) call, each later row one query; the freshness
    time is only in the context of the query that first saw the write."""
    table = retrieval.OPERATIONS_TABLE

    def check(rows: list[Row], write: str) -> None:
        assert rows[0] == ("freshness_probe", [write], {"write": write}), rows
        assert len(rows) >= 2 and all(r[:2] == ("query[freshness]", ["query"]) for r in rows[1:]), rows
        assert all(extra == {} for _, _, extra in rows[1:-1])
        assert rows[-1][2]["write"] == write and rows[-1][2]["freshness_ms"] >= 0

    if flavour == "sync":
        store = retrieval.open_sync(settings)
        try:
            calls = spy(store.client, False)
            for write in ("insert", "delete"):
                check(run_probe(table, store, calls), write)
        finally:
            store.close()
        return

    async def go() -> None:
        store = await retrieval.AsyncRetrievalStore.open(settings)
        try:
            calls = spy(store.client, True)
            for write in ("insert", "delete"):
                check(await arun_probe(table, store, calls), write)
        finally:
            await store.close()

    asyncio.run(go())


def test_tenant_search_stays_in_its_tenant_and_grouping_groups(settings: Settings) -> None:
    store = retrieval.open_sync(settings)
    try:
        vector, tenant, probe = store.inputs("tenant_search")
        store.call("tenant_search", vector, tenant, probe)
        assert probe.ids and all(i % settings.tenants == tenant for i in probe.ids)  # document i is tenant i mod N
        vector, probe = store.inputs("grouping_search")
        store.call("grouping_search", vector, probe)
        categories = [i % 10 for i in probe.ids]
        assert len(categories) == len(set(categories))  # one hit per group (group_size 1)
        word, probe = store.inputs("text_match_query")
        store.call("text_match_query", word, probe)
        assert probe.ids and all(word in retrieval.tokens(store.corpus.texts[i]) for i in probe.ids)
    finally:
        store.close()


def test_bm25_relevance_equals_an_exact_reference(lite: ServerInfo) -> None:
    """loadgen's full-text search and its NDCG@10 / recall@k, against bm25s over the same tokens. One tenant and one
    insert batch: milvus-lite keeps BM25 statistics per segment, so a single segment makes them the corpus's."""
    import bm25s
    import numpy as np

    # milvus-lite's defaults (milvus_lite/index/sparse_factory.py); Milvus's own k1 is 1.2
    BM25_K1, BM25_B = 1.5, 0.75
    from loadgen.workload import corpus as corpora

    s = Settings(uri=lite.uri, collection="t15bm", dim=8, rows=80, top_k=10, tenants=1, consistency_level="Strong")
    retrieval.prepare(s, progress=False)
    store = retrieval.open_sync(s)
    reference = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    reference.index([retrieval.tokens(t) for t in store.corpus.texts], show_progress=False)
    ours_ndcg, ref_ndcg = [], []
    try:
        for qid, text in store.corpus.judged_queries():
            inputs = store.inputs("full_text_search")
            inputs = (text, inputs[1], type(inputs[2])(), qid)
            store.call("full_text_search", *inputs)
            observed = store.observe("full_text_search", inputs)
            hits = store.client.search(
                store.name, data=[text], anns_field="sparse", limit=10,
                search_params={"metric_type": "BM25"}, output_fields=["id"], consistency_level="Strong",
            )[0]  # fmt: skip
            # bm25s's lucene variant leaves out the constant (k1 + 1) factor of every term
            scores = reference.get_scores(retrieval.tokens(text)) * (BM25_K1 + 1)
            order = np.lexsort((np.arange(len(scores)), -scores))[: len(hits)]
            assert [abs(h["distance"]) for h in hits] == pytest.approx(scores[order].tolist(), rel=1e-4)
            assert [h["id"] for h in hits] == inputs[2].ids
            ranked = [store.corpus.doc_ids[i] for i in order if scores[i] > 0]
            ours_ndcg.append(observed["ndcg@10"])
            ref_ndcg.append(corpora.ndcg_at_k(ranked, store.corpus.qrels[qid], 10))
            assert observed["relevance_recall"] == corpora.recall_at_k(ranked, store.corpus.qrels[qid], 10)
    finally:
        store.close()
    assert len(ours_ndcg) == 80 and ours_ndcg == pytest.approx(ref_ndcg)
    assert 0 < float(np.mean(ours_ndcg)) <= 1


def test_a_frozen_server_shows_a_long_freshness_time(lite: ServerInfo, settings: Settings) -> None:
    """The server is frozen (SIGSTOP) right after it acknowledged the insert: no query can see the row until it is
    thawed, so the freshness time is at least the freeze."""
    import os
    import signal
    import threading

    freeze_s = 1.5
    store = retrieval.open_sync(settings)
    thawed = threading.Event()

    def freeze() -> None:
        os.killpg(lite.pid, signal.SIGSTOP)
        threading.Timer(freeze_s, lambda: (os.killpg(lite.pid, signal.SIGCONT), thawed.set())).start()

    table, calls = retrieval.OPERATIONS_TABLE, spy(store.client, False)
    try:
        normal = run_probe(table, store, calls)  # an insert
        store.probe_ids.clear()  # the next probe inserts again instead of deleting
        frozen = run_probe(table, store, calls, after_write=freeze)
        assert thawed.wait(30)
        assert frozen[0] == ("freshness_probe", ["insert"], {"write": "insert"})  # acknowledged before the freeze
        assert frozen[-1][2]["write"] == "insert" and frozen[-1][2]["freshness_ms"] >= freeze_s * 1000
        assert normal[-1][2]["freshness_ms"] < frozen[-1][2]["freshness_ms"]
    finally:
        os.killpg(lite.pid, signal.SIGCONT)
        store.close()


@pytest.mark.parametrize("framework", ["langchain", "llamaindex"])
def test_framework_hybrid_and_full_text_sync_and_async(settings: Settings, framework: str) -> None:
    """langchain-milvus (builtin BM25 function, two vector fields, rrf/weighted rankers) and llama-index
    (enable_sparse with the BM25 built-in, hybrid_ranker RRF/weighted), each sync and async. llama-index's text search
    cannot run against milvus-lite (the library's fixed drop_ratio_search): refused in one line, nothing created."""
    from pymilvus import MilvusClient, MilvusException

    from loadgen.clients import retrieval_frameworks as fw
    from loadgen.errors import LoadgenError

    s = replace(settings, collection="t15fw", rows=60)
    corpus = retrieval.corpus_for(s)
    if framework == "langchain":
        prepare, ops, limited = fw.prepare_langchain, fw.LANGCHAIN_OPS, None
    else:
        ops = tuple(op for op in fw.LLAMAINDEX_OPS if op.name != "query[text_search]")
        limited = next(op for op in fw.LLAMAINDEX_OPS if op.name == "query[text_search]")
        with pytest.raises(LoadgenError) as refused:
            fw.prepare_llamaindex(s, corpus)  # every operation, text search included
        assert str(refused.value).startswith("operation 'query[text_search]' cannot run against milvus_lite-")
        assert "drop_ratio_search" in str(refused.value) and "\n" not in str(refused.value)
        client = MilvusClient(uri=s.uri)
        assert not client.has_collection(fw.li_name(s))  # refused before anything was created
        client.close()

        prepare = functools.partial(fw.prepare_llamaindex, operations=[op.name for op in ops])

    assert prepare(s, corpus) is True
    assert prepare(s, corpus) is False  # reused: loadgen's own, already filled
    lc_cls, li_cls = fw.state_classes()
    cls = lc_cls if framework == "langchain" else li_cls
    sync_state = cls(s)
    seen = []
    try:
        if limited is not None:  # the limitation, pinned to the library's own call against this server
            with pytest.raises(MilvusException, match="drop_ratio_search"):
                limited.call(sync_state, *limited.inputs(sync_state))
        for op in ops:
            for _ in range(2):
                inputs = op.inputs(sync_state)
                n = op.call(sync_state, *inputs)
                seen.append({"op": op.name, "n": n, **sync_state.observe("search", inputs)})
    finally:
        sync_state.close()

    async def run_async() -> list[dict]:
        state = await cls.open(s)
        try:
            out = []
            for op in ops:
                for _ in range(2):
                    inputs = op.inputs(state)
                    n = await op.acall(state, *inputs)
                    out.append({"op": op.name, "n": n, **state.observe("search", inputs)})
            return out
        finally:
            state.close()

    seen += asyncio.run(run_async())
    assert len(seen) == 4 * len(ops)
    assert all(x["n"] > 0 and 0 <= x["ndcg@10"] <= 1 for x in seen), seen
    assert fw.drop(s) == [fw.lc_name(s) if framework == "langchain" else fw.li_name(s)]
