"""Every figure of a run, defined once. The summary table, ``results.json``, the web UI's tab and JSON, the report and
the checks all read them from here (through ``loadgen.stats.results``), so one run reads the same everywhere.

- A request row is one real store call (request type ``<layer>[-async|-async-fanout]``, name = the library's method).
- ``requests`` counts every call of the row, successes and failures; ``failures`` the failed ones (counted apart).
- Latency figures (``avg_ms``, ``min_ms``, ``p50_ms`` .. ``p99_9_ms``, ``max_ms``) are over the SUCCESSFUL calls,
  from loadgen's microsecond HDR histograms (``avg_ms`` is their exact mean); ``successes`` is their population.
  A failure's time (often a timeout) says how long it took to fail, not how fast the store is.
- ``window_s``: one window for the whole run, from its start to its last request; every row's ``rps`` and the
  total ``qps`` are requests over that same window, so the rows' rates add up to the total.
- ``fail_ratio`` = failed calls / calls, over every row.
- ``totals`` count store calls: a flow's row (type ``flow``, ``loadgen.stats.flows``) times several calls that have
  rows of their own, so it is listed apart and never added to them (``is_flow``).
- A search's shape (``--nq``, ``--output-fields``): ``query_vectors``, ``qvps``, ``nq`` and ``response_bytes_*``,
  defined in ``loadgen.stats.shape``; recall is per query vector (``loadgen.stats.recall``).
"""

from __future__ import annotations

from typing import Any

from loadgen.stats import shape as shape_figures
from loadgen.stats.flows import FLOW_TYPE
from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.shape import ShapeTally

LATENCY_KEYS = ("avg_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")
_SUMMARY_KEYS = ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def window_s(start: float | None, last_request: float | None) -> float:
    """The run's measuring window in seconds (Locust's test start to its last request; 0 with no requests)."""
    if not start or not last_request:
        return 0.0
    return max(float(last_request) - float(start), 0.0)


def _latency(hist: LatencyHistograms, request_type: str, name: str) -> dict[str, Any]:
    p = hist.percentiles(request_type, name)
    return {"successes": p["count"], "avg_ms": p["mean_ms"], **{k: p[k] for k in LATENCY_KEYS if k != "avg_ms"}}


def _brief(hist: LatencyHistograms, request_type: str, name: str) -> dict[str, Any] | None:
    p = hist.percentiles(request_type, name)
    return {k: p[k] for k in _SUMMARY_KEYS} if p["count"] else None


def request_row(
    request_type: str,
    name: str,
    *,
    requests: int,
    failures: int,
    length: int,
    window: float,
    latency: LatencyHistograms,
    service: LatencyHistograms | None = None,
    embedding: LatencyHistograms | None = None,
    shape: ShapeTally | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "type": request_type,
        "name": name,
        "requests": requests,
        "failures": failures,
        "rps": requests / window if window > 0 else 0.0,
        **_latency(latency, request_type, name),
        "response_length_total": length,
        **(shape.figures(request_type, name, window) if shape is not None else {}),
    }
    for key, family in (("service", service), ("embedding", embedding)):
        brief = _brief(family, request_type, name) if family is not None else None
        if brief:  # open model: the calls' own times; framework layers: time spent embedding inside the calls
            row[key] = brief
    return row


def is_flow(row: dict[str, Any]) -> bool:
    """A flow's row: the time of several store calls (and the user's own code), each of them a row already."""
    return row.get("type") == FLOW_TYPE


def totals(rows: list[dict[str, Any]], window: float) -> dict[str, Any]:
    """Over the store calls (and failed tasks): flow rows left out, their calls are counted in their own rows."""
    rows = [r for r in rows if not is_flow(r)]
    n = sum(int(r["requests"]) for r in rows)
    failed = sum(int(r["failures"]) for r in rows)
    return {
        "requests": n,
        "failures": failed,
        "fail_ratio": failed / n if n else 0.0,
        "qps": n / window if window > 0 else 0.0,
        "window_s": window,
        **shape_figures.totals(rows, window),
    }
