"""Before/after: two sets of runs side by side, matched by operation and level, with deltas."""

from __future__ import annotations

from typing import Any

from loadgen.report.analysis import Point, points
from loadgen.report.load import Run
from loadgen.stats import rounds

FIELDS = ("qps", "p50_ms", "p99_ms", "error_rate", "recall", "qvps", "response_bytes_per_call")


def _key(p: Point) -> tuple[str, str, str, float, int, int | None]:
    return (p.type, p.name, p.kind, p.level, p.processes, p.replicas)


def _pct(before: float, after: float) -> float | None:
    return (after - before) / before * 100.0 if before else None


def _of(p: Point, figure: str) -> dict[str, float] | None:
    return p.spread.get(figure) if p.spread else None


def diff(baseline: list[Run], candidate: list[Run]) -> dict[str, Any]:
    """Rows for the (operation, level) pairs both sides measured; what only one side has is counted, not guessed."""
    a = {_key(p): p for p in points(baseline)}
    b = {_key(p): p for p in points(candidate)}
    rows = []
    for key in sorted(a.keys() & b.keys(), key=str):
        pa, pb = a[key], b[key]
        rows.append(
            {
                "operation": f"{pa.type} {pa.name}", "kind": pa.kind, "level": pa.level, "processes": pa.processes,
                "baseline": {f: getattr(pa, f) for f in FIELDS},
                "candidate": {f: getattr(pb, f) for f in FIELDS},
                # --rounds: each side's spread, and whether the change lies inside it (their ranges overlap)
                "spread": {"baseline": pa.spread, "candidate": pb.spread},
                "within_spread": {
                    "qps": rounds.overlap(_of(pa, "qps"), _of(pb, "qps")),
                    "p50": rounds.overlap(_of(pa, "p50_ms"), _of(pb, "p50_ms")),
                    "p99": rounds.overlap(_of(pa, "p99_ms"), _of(pb, "p99_ms")),
                },
                "delta": {
                    "qps_pct": _pct(pa.qps, pb.qps),
                    "p50_pct": _pct(pa.p50_ms, pb.p50_ms),
                    "p99_pct": _pct(pa.p99_ms, pb.p99_ms),
                    "error_rate_pp": (pb.error_rate - pa.error_rate) * 100.0,
                    "recall": pb.recall - pa.recall if pa.recall is not None and pb.recall is not None else None,
                    "qvps_pct": _pct(pa.qvps, pb.qvps) if pa.qvps is not None and pb.qvps is not None else None,
                },
            }
        )  # fmt: skip
    return {
        "baseline": sorted({r.source for r in baseline}),
        "candidate": sorted({r.source for r in candidate}),
        "rows": rows,
        "only_in_baseline": len(a.keys() - b.keys()),
        "only_in_candidate": len(b.keys() - a.keys()),
    }
