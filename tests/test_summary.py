"""Unit tests of the results summary built from Locust's JSON stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgen.stats.results import build_results, entry_metrics, failure_kind, render_table
from loadgen.stats.timing import ReportedError


def entry(name: str, times: dict[str, int], total_ms: float, fails: int = 0) -> dict[str, object]:
    n = sum(times.values())
    return {
        "name": name,
        "method": "pymilvus",
        "num_requests": n,
        "num_failures": fails,
        "total_response_time": total_ms,
        "min_response_time": 0.4,
        "max_response_time": 9.7,
        "total_content_length": 10 * n,
        "response_times": times,
        "start_time": 100.0,
        "last_request_timestamp": 110.0,
    }


def test_percentiles_mean_and_rate_from_buckets() -> None:
    # 100 requests: 90 at 1 ms, 9 at 5 ms, 1 at 10 ms
    m = entry_metrics(entry("search", {"1": 90, "5": 9, "10": 1}, total_ms=90 * 1.2 + 9 * 5.1 + 9.7))
    assert m["requests"] == 100 and m["rps"] == 10.0
    assert m["p50_ms"] == 1.0 and m["p95_ms"] == 5.0 and m["p99_ms"] == 5.0
    assert abs(m["avg_ms"] - (108 + 45.9 + 9.7) / 100) < 1e-9


def test_results_and_table(tmp_path: Path) -> None:
    (tmp_path / "locust.json").write_text(json.dumps([entry("search", {"2": 4}, 8.0, fails=1)]))
    (tmp_path / "stats_failures.csv").write_text('Method,Name,Error,Occurrences\npymilvus,search,"boom",1\n')
    res = build_results(tmp_path, settings={"dim": 8}, run={"users": 1})
    assert res["totals"] == {"requests": 4, "failures": 1, "fail_ratio": 0.25}
    table = render_table(res)
    assert "search" in table and "TOTAL" in table and "failure: pymilvus search x1 [client]: boom" in table
    assert res["failures"][0]["kind"] == "client"


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
