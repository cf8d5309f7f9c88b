"""Unit tests of the results (stats.results.build) and the figures they hold (stats.figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from loadgen.stats.checks import Checks, evaluate, qps
from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.results import build, failure_kind, render_table
from loadgen.stats.timing import ReportedError


@dataclass
class Entry:  # what results.build reads of a Locust StatsEntry
    method: str
    name: str
    num_requests: int
    num_failures: int
    total_content_length: int = 0


@dataclass
class Error:  # ... of a Locust StatsError
    method: str
    name: str
    error: str
    occurrences: int


@dataclass
class Stats:  # ... of Locust's RequestStats
    entries: dict[tuple[str, str], Entry]
    errors: dict[str, Error] = field(default_factory=dict)
    total: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(start_time=100.0, last_request_timestamp=110.0)
    )


def listener() -> SimpleNamespace:
    return SimpleNamespace(histograms=LatencyHistograms(), service=LatencyHistograms(), embedding=LatencyHistograms(),
                           batches=LatencyHistograms(), skipped={})  # fmt: skip


def test_figures_are_over_successes_and_one_window() -> None:
    hist = listener()
    for ms in [1.0] * 90 + [5.0] * 9 + [10.0]:  # 100 successes
        hist.histograms.record("pymilvus", "search", ms)
    for _ in range(20):
        hist.histograms.record("pymilvus-async", "search", 2.0)
    hist.embedding.record("langchain", "similarity_search", 0.5)
    stats = Stats({("search", "pymilvus"): Entry("pymilvus", "search", 104, 4, 1000),
                   ("search", "pymilvus-async"): Entry("pymilvus-async", "search", 20, 0)})  # fmt: skip
    res = build(stats, histograms=hist, settings={"dim": 8}, run={"users": 1})  # type: ignore[arg-type]
    assert res["format"] == "milvus-loadgen/results/v2"
    sync, aio = sorted(res["requests"], key=lambda r: r["type"])
    assert sync["requests"] == 104 and sync["failures"] == 4 and sync["successes"] == 100
    hdr = pytest.approx  # HDR buckets: 3 significant digits
    assert (sync["p50_ms"], sync["p95_ms"], sync["p99_ms"]) == (
        hdr(1.0, rel=1e-3),
        hdr(5.0, rel=1e-3),
        hdr(5.0, rel=1e-3),
    )
    assert sync["max_ms"] == hdr(10.0, rel=1e-3)
    assert abs(sync["avg_ms"] - (90 * 1 + 9 * 5 + 10) / 100) < 1e-9  # the successes' exact mean
    assert sync["rps"] == 10.4 and aio["rps"] == 2.0  # one 10 s window for every row
    t = res["totals"]
    assert t == {"requests": 124, "failures": 4, "fail_ratio": 4 / 124, "qps": 12.4, "window_s": 10.0}
    assert abs(sum(r["rps"] for r in res["requests"]) - t["qps"]) < 1e-9
    assert qps(res) == t["qps"]


def test_results_and_table() -> None:
    hist = listener()
    for ms in (2.0, 2.0, 2.0):
        hist.histograms.record("pymilvus", "search", ms)
    stats = Stats({("search", "pymilvus"): Entry("pymilvus", "search", 4, 1)},
                  {"e": Error("pymilvus", "search", "boom", 1)})  # fmt: skip
    res = build(stats, histograms=hist, settings={"dim": 8}, run={"users": 1})  # type: ignore[arg-type]
    assert res["totals"]["fail_ratio"] == 0.25
    table = render_table(res)
    assert "search" in table and "TOTAL" in table and "failure: pymilvus search x1 [client]: boom" in table
    assert res["failures"][0]["kind"] == "client"
    assert evaluate(Checks(fail_ratio=0.2), res) == ["check failed: fail ratio 25.00% > 20.00% (1 of 4 requests)"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("CallTimeout('no answer within 2 s')", "timeout"),
        ("MilvusException(code=DEADLINE_EXCEEDED, message='Deadline Exceeded')", "timeout"),
        ("MilvusException(code=UNAVAILABLE, message='failed to connect to all addresses')", "unavailable"),
        ("MilvusException(code=2, message='Fail connecting to server on 127.0.0.1:1')", "unavailable"),
        ("RpcError(code=UNAUTHENTICATED, message='auth check failure')", "auth"),
        ("MilvusException(code=101, message='failed to search: collection not loaded')", "server"),
        ("KeyError('x')", "client"),
    ],
)
def test_failure_kinds(error: str, kind: str) -> None:
    assert failure_kind(error) == kind


def test_reported_error_is_one_line_with_grpc_code_and_details() -> None:
    import grpc
    from pymilvus import MilvusException

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "failed to connect to all addresses"

        def __str__(self) -> str:
            return "<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.UNAVAILABLE>"

    wrapped = MilvusException(code=Unavailable().code, message=str(Unavailable()))  # what pymilvus raises
    for error in (Unavailable(), wrapped):
        text = str(ReportedError(error))
        assert "\n" not in text and "code=UNAVAILABLE" in text and "failed to connect to all addresses" in text
