"""The run's report.html builder (``loadgen.stats.run_page``) on a results document with known figures: store calls
and their TOTAL apart from flows, recall, checks, client vs server, a run stopped early; and the one definition of
totals it shows (``figures.totals``: store calls, never a flow's row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from run_report_html import read, rows

from loadgen.stats import figures, run_page
from loadgen.stats.histograms import LatencyHistograms


def _row(kind: str, name: str, requests: int, failures: int, p50: float, p99: float) -> dict[str, Any]:
    lat = {"avg_ms": p50, "min_ms": p50, "p50_ms": p50, "p90_ms": p99, "p95_ms": p99, "p99_ms": p99,
           "p99_9_ms": p99, "max_ms": p99}  # fmt: skip
    return {"type": kind, "name": name, "requests": requests, "failures": failures, "rps": requests / 10.0,
            "successes": requests - failures, **lat}  # fmt: skip


def _doc() -> dict[str, Any]:
    requests = [_row("flow", "rag", 40, 1, 9.5, 30.25), _row("pymilvus", "search", 100, 2, 1.2345, 22.6071),
                _row("pymilvus", "get", 40, 0, 0.5, 1.75)]  # fmt: skip
    server = {"available": True, "source": "http://127.0.0.1:9091/metrics", "window_s": 10.0,
              "operations": {"Search": {"requests": {"success": 98},
                                        "latency": {"count": 98, "mean_ms": 1.0, "p50_ms": 0.9, "p99_ms": 3.5,
                                                    "p99_le_ms": 4.0}}}}  # fmt: skip
    ran = [{"process": "local", "class": "Rag", "type": "pymilvus", "driver": "greenlet", "users": 4}]
    return {
        "run": {"state": "stopped", "users": 4, "classes": ["Rag"], "partial": "partial: stopped by a signal",
                "drivers": ran},
        "settings": {"uri": "http://127.0.0.1:19530", "token_set": True},
        "requests": requests,
        "totals": figures.totals(requests, 10.0),
        "failures": [],
        "recall": {"pymilvus search": {"mean": 0.98765, "p50": 1.0, "p5": 0.9, "p1": 0.8, "min": 0.7, "count": 98}},
        "flows": {"rag": {"total": {"count": 39, "mean_ms": 9.5},
                          "steps": [{"step": "retrieve", "count": 39, "mean_ms": 2.0, "p50_ms": 1.9, "p99_ms": 5.0,
                                     "share": 0.21}]}},
        "server": server,
        "checks": {"set": {"p99_ms": 20.0, "fail_ratio": None}, "failed": ["check failed: p99 22.6071 ms > 20 ms"]},
    }  # fmt: skip


def test_totals_count_store_calls_never_a_flows_row() -> None:
    t = figures.totals(_doc()["requests"], 10.0)
    assert (t["requests"], t["failures"], t["qps"]) == (140, 2, 14.0)  # the flow's 40 (1 failed) left out


def test_the_page_shows_the_documents_figures(tmp_path: Path) -> None:
    doc = _doc()
    path = tmp_path / "report.html"
    path.write_text(run_page.render(doc, server_function=lambda t, n: "Search" if n == "search" else None))
    page = read(path)
    store = rows(page.tables["store-calls"][0])
    assert [(r["name"], r["requests"], r["p50 ms"], r["p99 ms"], r["recall"], r["driver"]) for r in store] == [
        ("search", "100", "1.234", "22.607", "0.9877", "greenlet"),  # ms to the microsecond, as the summary
        ("get", "40", "0.500", "1.750", "", "greenlet"),
        ("TOTAL", "140", "", "", "", ""),
    ]
    assert store[-1]["failures"] == "2" and store[-1]["req/s"] == "14.0"
    flows = rows(page.tables["flows"][0])
    assert [(r["type"], r["name"], r["requests"], r["p99 ms"]) for r in flows] == [("flow", "rag", "40", "30.250")]
    assert rows(page.tables["flows"][1])[0]["share of the flow"] == "21.0%"
    assert rows(page.tables["recall"][0])[0]["mean"] == "0.9877"
    (server,) = rows(page.tables["server"][0])
    assert (server["operation"], server["client p99"], server["server p99"], server["p99 <="]) == (
        "pymilvus search", "22.607", "3.500", "4")  # fmt: skip
    assert rows(page.tables["checks"][0]) == [{"check": "--check-p99-ms", "limit": "20"}]
    text = path.read_text()
    assert "check failed: p99 22.6071 ms &gt; 20 ms" in text
    assert "partial: stopped early" in page.title and "stopped by a signal" in page.banner
    assert "locust-report.html" not in page.links  # none given: a web UI run's


def test_a_whole_run_links_locusts_report_and_is_not_marked() -> None:
    doc = _doc()
    del doc["run"]["partial"]
    page = run_page.render(doc, server_function=lambda *_: None, locust_report="locust-report.html")
    assert 'href="locust-report.html"' in page and "Stopped early" not in page and 'role="alert"' not in page


def test_an_empty_histogram_row_renders() -> None:
    """A row with no successful call (every call failed): zeros, not a crash."""
    hist = LatencyHistograms()
    row = figures.request_row("pymilvus", "search", requests=3, failures=3, length=0, window=1.0, latency=hist)
    doc = {"run": {}, "requests": [row], "totals": figures.totals([row], 1.0), "failures": []}
    assert "TOTAL" in run_page.render(doc, server_function=lambda *_: None)
