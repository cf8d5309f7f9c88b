"""Pass/fail checks for CI, evaluated on the results built by ``loadgen.stats.results.build``.

Each failed check is one human line; any failure ends the run with ``CHECK_FAILED_EXIT_CODE`` (distinct from
``LoadgenError``'s 2, so CI can tell "the system is too slow" from "loadgen could not run"). They are evaluated by a
``quitting`` listener of the master (``loadgen.locust.hooks``), which sets Locust's process exit code, so they hold
under ``loadgen run``, a plain ``locust --headless``, the web UI and a Kubernetes Job alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadgen.stats import ingest, runbook

CHECK_FAILED_EXIT_CODE = 3


@dataclass(frozen=True)
class Checks:
    """Thresholds; ``None`` means no check.

    p99_ms: the highest p99 allowed for every request row; fail_ratio: the highest share of failed store calls
    (0.01 = 1%); min_qps: the lowest total request rate; min_recall: the lowest mean recall; min_recall_p10: the
    lowest p10 of per-query recall (every recall series, every runbook search step and all of them together);
    max_index_lag_s: the highest index lag of an ingest-readiness run (``loadgen.stats.ingest``); min_qvps: the lowest
    total rate of query vectors searched (``totals.qvps``); max_response_bytes: the highest mean response bytes per
    call of any search row (``response_bytes_per_call``). Both figures: ``loadgen.stats.shape``.
    """

    p99_ms: float | None = None
    fail_ratio: float | None = None
    min_qps: float | None = None
    min_recall: float | None = None
    min_recall_p10: float | None = None
    max_index_lag_s: float | None = None
    min_qvps: float | None = None
    max_response_bytes: float | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in self.__dict__.values())


def _num(value: float) -> str:
    """3.0 -> "3", 12.3 -> "12.3", 10.0004 -> "10.0004": short, yet a value just over a limit still reads as over."""
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"


def _recalls(results: dict[str, Any]) -> dict[str, float]:
    """Recall as ``{label: value}``; accepts a number, ``{"mean": x}``, or ``{name: number | {"mean": x}}``."""
    recall = results.get("recall")
    if recall is None:
        return {}
    if isinstance(recall, int | float):
        return {"": float(recall)}
    if isinstance(recall, dict):
        if isinstance(recall.get("mean"), int | float):
            return {"": float(recall["mean"])}
        out: dict[str, float] = {}
        for name, entry in recall.items():
            value = entry.get("mean") if isinstance(entry, dict) else entry
            if isinstance(value, int | float):
                out[str(name)] = float(value)
        return out
    return {}


def qps(results: dict[str, Any]) -> float:
    """Store calls per second over the run's window (``loadgen.stats.figures``); v1 results: the rows' sum."""
    totals = results.get("totals", {})
    if "qps" in totals:
        return float(totals["qps"])
    return sum(float(m["rps"]) for m in results.get("requests", []) if m.get("type") != "embedding")


def evaluate(checks: Checks, results: dict[str, Any]) -> list[str]:
    """One line per failed check; an empty list means every check passed (or none was set)."""
    failed: list[str] = []
    if checks.p99_ms is not None:
        for m in results.get("requests", []):
            p99 = float(m["p99_ms"])
            if m.get("requests") and p99 > checks.p99_ms:
                failed.append(f"check failed: p99 {_num(p99)} ms > {_num(checks.p99_ms)} ms ({m['type']} {m['name']})")
    if checks.fail_ratio is not None:
        totals = results.get("totals", {})
        ratio = float(totals.get("fail_ratio", 0.0))
        if ratio > checks.fail_ratio:
            failed.append(
                f"check failed: fail ratio {ratio:.2%} > {checks.fail_ratio:.2%} "
                f"({totals.get('failures', 0)} of {totals.get('requests', 0)} requests)"
            )
    if checks.min_qps is not None:
        rate = qps(results)
        if rate < checks.min_qps:
            failed.append(f"check failed: throughput {_num(rate)} req/s < {_num(checks.min_qps)} req/s")
    for limit, check in (
        (checks.min_recall, _mean_recall), (checks.min_recall_p10, _p10), (checks.max_index_lag_s, _index_lag)
    ):  # fmt: skip
        if limit is not None:
            failed += check(limit, results)
    failed += _shape(checks, results)
    return [" ".join(line.split()) for line in failed]  # one line each, whatever the request names hold


def _mean_recall(limit: float, results: dict[str, Any]) -> list[str]:
    recalls = _recalls(results)
    if not recalls:
        return [f"check failed: recall >= {_num(limit)} required but no recall measured"]
    return [
        f"check failed: recall {_num(value)} < {_num(limit)}" + (f" ({label})" if label else "")
        for label, value in sorted(recalls.items())
        if value < limit
    ]


def _index_lag(limit: float, results: dict[str, Any]) -> list[str]:
    lag = ingest.max_lag_s(results.get("ingest"))
    if lag is None:
        return [f"check failed: index lag <= {_num(limit)} s required but none measured (--ingest-readiness, inserts)"]
    return [f"check failed: {ingest.lag_text(results.get('ingest'), lag)} > {_num(limit)} s"] if lag > limit else []


def _p10(limit: float, results: dict[str, Any]) -> list[str]:
    recall = results.get("recall")
    found = [
        (str(name), float(entry["p10"]))
        for name, entry in (recall.items() if isinstance(recall, dict) else [])
        if isinstance(entry, dict) and isinstance(entry.get("p10"), int | float)
    ]
    found += runbook.p10s(results.get("runbook"))
    if not found:
        return [f"check failed: recall p10 >= {_num(limit)} required but no per-query recall measured"]
    return [f"check failed: recall p10 {_num(p)} < {_num(limit)} ({label})" for label, p in found if p < limit]


def from_settings(settings: Any) -> Checks:
    return Checks(
        settings.check_p99_ms,
        settings.check_fail_ratio,
        settings.check_min_qps,
        settings.check_min_recall,
        settings.check_min_recall_p10,
        settings.check_max_index_lag_s,
        settings.check_min_qvps,
        settings.check_max_response_bytes,
    )


def _shape(checks: Checks, results: dict[str, Any]) -> list[str]:
    failed: list[str] = []
    if checks.min_qvps is not None:
        totals = results.get("totals", {})
        if "qvps" not in totals:
            failed.append(f"check failed: query vectors/s >= {_num(checks.min_qvps)} required but no search counted "
                          "its query vectors")  # fmt: skip
        elif float(totals["qvps"]) < checks.min_qvps:
            failed.append(f"check failed: query vectors {_num(float(totals['qvps']))}/s < {_num(checks.min_qvps)}/s")
    if checks.max_response_bytes is not None:
        rows = [m for m in results.get("requests", []) if "response_bytes_per_call" in m]
        if not rows:
            failed.append(f"check failed: response bytes <= {_num(checks.max_response_bytes)} required but none "
                          "measured")  # fmt: skip
        for m in rows:
            size = float(m["response_bytes_per_call"])
            if size > checks.max_response_bytes:
                failed.append(f"check failed: response {_num(size)} bytes/call > {_num(checks.max_response_bytes)} "
                              f"({m['type']} {m['name']})")  # fmt: skip
    return failed


def exit_code(failed: list[str]) -> int:
    return CHECK_FAILED_EXIT_CODE if failed else 0
