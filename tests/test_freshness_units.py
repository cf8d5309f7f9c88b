"""The freshness probe without a server (the fake store's client shows a write ``LAG_QUERIES`` queries later): the
write is one request row of one store call, every visibility query another, and the freshness time rides only on
the query that first saw the write, into its own merged statistic."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from probes import Row, arun_probe, run_probe, spy

from loadgen.clients import fake
from loadgen.clients.base import chain
from loadgen.config.settings import Settings
from loadgen.stats.retrieval import RetrievalStats


def _settings(**kw: Any) -> Settings:
    return Settings(uri="http://127.0.0.1:1", **kw)


def _probe(store: fake.Store, use_async: bool, calls: list[str]) -> list[Row]:
    if use_async:
        return asyncio.run(arun_probe(fake.OPERATIONS, store, calls))
    return run_probe(fake.OPERATIONS, store, calls)


@pytest.mark.parametrize("use_async", [False, True])
def test_the_write_and_each_query_are_rows_of_one_store_call(use_async: bool) -> None:
    store = fake.Store(_settings(consistency_level="Strong"), use_async)
    calls = spy(store.client, use_async)
    for write in ("insert", "delete"):  # a probe inserts a row, the next deletes it
        rows = _probe(store, use_async, calls)
        lag = fake.LAG_QUERIES
        assert [name for name, _, _ in rows] == ["freshness_probe"] + ["query[freshness]"] * lag
        assert [made for _, made, _ in rows] == [[write]] + [["query"]] * lag  # one store call per row
        assert rows[0][2] == {"write": write}  # the write's row knows no freshness: it is over when the write is
        assert all(extra == {} for _, _, extra in rows[1:-1])  # queries that did not see it yet
        seen = rows[-1][2]
        assert seen["write"] == write and seen["freshness_ms"] > 0 and set(seen) == {"write", "freshness_ms"}
    assert store.probe_ids == [] and store.client.rows == set()  # the delete removed what the insert wrote


def test_the_freshness_time_runs_from_the_acknowledgement_to_the_seeing_query() -> None:
    store = fake.Store(_settings(), False)
    op = fake.OPERATIONS["freshness_probe"]
    (seen,) = op.inputs(store)
    steps = chain(fake.OPERATIONS, store, op, (seen,))
    for step, inputs, _ in steps:
        value = step.call(store, *inputs)
        step.outcome(store, inputs, value)
    assert seen.polls == fake.LAG_QUERIES and seen.acked is not None
    assert seen.freshness_ms == pytest.approx((seen.answered - seen.acked) * 1000.0)


def test_a_write_never_seen_ends_the_probe_at_the_deadline_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "LAG_QUERIES", 10**9)  # the write never shows
    store = fake.Store(_settings(timeout=0.05), False)
    calls = spy(store.client, False)
    rows = _probe(store, False, calls)
    assert rows[0][1] == ["insert"] and all(made == ["query"] for _, made, _ in rows[1:])
    assert len(rows) > 2 and rows[-1][2] == {"freshness_unseen": 1, "write": "insert"}
    assert all("freshness_ms" not in extra for _, _, extra in rows)


def test_freshness_and_unseen_writes_merge_like_one_node() -> None:
    def node(values: list[float], unseen: int) -> RetrievalStats:
        st = RetrievalStats()
        for v in values:
            st.record(
                "retrieval",
                "query[freshness]",
                1.0,
                {"freshness_ms": v, "write": "delete", "consistency_level": "Strong"},
            )
            st.record("retrieval", "freshness_probe", 1.0, {"write": "delete", "consistency_level": "Strong"})
        for _ in range(unseen):
            st.record("retrieval-async", "query[freshness]", 1.0, {"freshness_unseen": 1, "write": "insert",
                                                                   "consistency_level": "Strong"})  # fmt: skip
        return st

    merged = RetrievalStats()
    for values, unseen in (([4.0], 1), ([8.0, 2.0], 2)):
        merged.merge_payload(json.loads(json.dumps(node(values, unseen).to_payload())))
    assert merged.results() == node([4.0, 8.0, 2.0], 3).results()
    res = merged.results()
    assert res["freshness_unseen"] == {"insert Strong retrieval-async": 3}
    assert res["freshness"]["delete Strong retrieval"]["count"] == 3  # the write rows' own times are not in it
