"""What a set of runs says: per operation and client layer, throughput against load, latency against throughput, the
knee, the highest throughput that holds a p99 SLO, error rate and recall per level, sync against async, and how
throughput scales with Locust workers and Milvus replicas.

Everything here is plain arithmetic on ``Run``s, so it is unit-tested on synthetic curves with known answers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from typing import Any

from loadgen.report.load import Run
from loadgen.stats import rounds
from loadgen.stats.drivers import by_type

# a knee is only called when the curve bends this much away from the straight line between its ends (normalised);
# measurement noise on a straight line stays well below it
KNEE_MIN_BEND = 0.1


@dataclass(frozen=True)
class Point:
    """One (request type, name) at one level of one run."""

    type: str
    name: str
    kind: str  # "users", "rate", or "insert-rate" (capacity's ingest steps)
    level: float
    processes: int
    replicas: int | None
    qps: float
    requests: int
    failures: int
    error_rate: float
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    recall: float | None
    source: str
    late: int | None = None  # open model: sends that left more than 10 ms behind schedule (this request type)
    dropped: int | None = None  # open model: sends skipped because every client was busy
    driver: str = ""  # how the calls of this request type waited (results' run.drivers); "" in older results
    rounds: int = 1  # --rounds: how many runs this point is the median of
    spread: dict[str, dict[str, float]] | None = None  # --rounds: per figure, its median, lowest and highest round
    # a search's shape (loadgen.stats.shape): query vectors per second, mean answer bytes per call; None: not counted
    qvps: float | None = None
    response_bytes_per_call: float | None = None

    @property
    def layer(self) -> str:
        return self.type.removesuffix("-async")

    @property
    def is_async(self) -> bool:
        return self.type.endswith("-async")


def counts_toward_qps(request_type: str) -> bool:
    """v1 results only: fan-out batches wrapped calls already counted one by one, and embedding rows were not Milvus
    requests. v2 rows are all store calls (``loadgen.stats.figures``)."""
    return not request_type.endswith("-batch") and request_type != "embedding"


def points(runs: list[Run]) -> list[Point]:
    out = []
    for run in runs:
        kind, level = run.level
        recall = run.results.get("recall") if isinstance(run.results.get("recall"), dict) else {}
        open_loop = run.results.get("open_loop")
        by_kind = open_loop.get("by_type") if isinstance(open_loop, dict) else None
        drivers = run.run.get("drivers")
        driver_of = by_type(drivers) if isinstance(drivers, list) else {}
        for m in run.results["requests"]:
            if not isinstance(m, dict) or not counts_toward_qps(str(m.get("type", ""))):
                continue
            n, fails = int(m.get("requests", 0)), int(m.get("failures", 0))
            rec = recall.get(f"{m['type']} {m['name']}") if isinstance(recall, dict) else None
            sends = by_kind.get(m["type"]) if isinstance(by_kind, dict) else None
            sends = sends if isinstance(sends, dict) else {}
            out.append(
                Point(
                    type=m["type"], name=m["name"], kind=kind, level=level, processes=run.processes,
                    replicas=run.replicas, qps=float(m.get("rps", 0.0)), requests=n, failures=fails,
                    error_rate=fails / n if n else 0.0, avg_ms=float(m.get("avg_ms", 0.0)),
                    p50_ms=float(m.get("p50_ms", 0.0)), p95_ms=float(m.get("p95_ms", 0.0)),
                    p99_ms=float(m.get("p99_ms", 0.0)),
                    recall=float(rec["mean"]) if isinstance(rec, dict) and isinstance(rec.get("mean"), int | float)
                    else None,
                    source=run.source, late=sends.get("late"), dropped=sends.get("dropped"),
                    driver=driver_of.get(m["type"], ""), qvps=_number(m.get("qvps")),
                    response_bytes_per_call=_number(m.get("response_bytes_per_call")),
                )
            )  # fmt: skip
    return merge_rounds(out)


SPREAD_FIGURES = ("qps", "p50_ms", "p95_ms", "p99_ms")


def merge_rounds(pts: list[Point]) -> list[Point]:
    """The rounds of one level (``--rounds``: same operation, level and setup, same input) as one point: each
    figure the median of its rounds (``loadgen.stats.rounds``) with its spread; calls and failures summed."""
    grouped: dict[tuple[Any, ...], list[Point]] = defaultdict(list)
    for p in pts:
        grouped[(p.source, p.type, p.name, p.kind, p.level, p.processes, p.replicas)].append(p)
    out = []
    for same in grouped.values():
        if len(same) == 1:
            out.append(same[0])
            continue
        figures = {f: rounds.spread([getattr(p, f) for p in same]) for f in SPREAD_FIGURES}
        n, fails = sum(p.requests for p in same), sum(p.failures for p in same)
        recalls = [p.recall for p in same if p.recall is not None]
        out.append(replace(
            same[0], requests=n, failures=fails, error_rate=fails / n if n else 0.0,
            avg_ms=rounds.spread([p.avg_ms for p in same])["median"],
            recall=rounds.spread(recalls)["median"] if recalls else None,
            late=sum(p.late or 0 for p in same) if any(p.late is not None for p in same) else None,
            dropped=sum(p.dropped or 0 for p in same) if any(p.dropped is not None for p in same) else None,
            rounds=len(same), spread=figures, qps=figures["qps"]["median"], p50_ms=figures["p50_ms"]["median"],
            p95_ms=figures["p95_ms"]["median"], p99_ms=figures["p99_ms"]["median"],
            qvps=_median([p.qvps for p in same]),
            response_bytes_per_call=_median([p.response_bytes_per_call for p in same]),
        ))  # fmt: skip
    return out


def _median(values: list[float | None]) -> float | None:
    """The median of the rounds that measured a figure (the request shape's), None when none did."""
    known = [v for v in values if v is not None]
    return rounds.spread(known)["median"] if known else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


CurveKey = tuple[str, str, str, int, int | None]  # type, name, kind, processes, replicas


def curves(pts: list[Point]) -> dict[CurveKey, list[Point]]:
    """Points of one operation under one setup, by level (a sweep's curve)."""
    grouped: dict[CurveKey, list[Point]] = defaultdict(list)
    for p in pts:
        grouped[(p.type, p.name, p.kind, p.processes, p.replicas)].append(p)
    return {k: sorted(v, key=lambda p: p.level) for k, v in sorted(grouped.items(), key=lambda kv: str(kv[0]))}


def knee(xs: list[float], ys: list[float]) -> float | None:
    """The x where a rising, flattening curve bends most (Kneedle: the largest gap between the curve and the straight
    line through its ends, both axes scaled to 0..1), or None: fewer than 3 distinct points, a curve that does not
    rise, or one that stays close to a straight line (no knee within the measured range)."""
    pairs = sorted({x: y for x, y in zip(xs, ys, strict=True)}.items())
    if len(pairs) < 3:
        return None
    x0, x1 = pairs[0][0], pairs[-1][0]
    y0, y1 = min(y for _, y in pairs), max(y for _, y in pairs)
    if x1 <= x0 or y1 <= y0:
        return None
    gaps = [((y - y0) / (y1 - y0) - (x - x0) / (x1 - x0), x) for x, y in pairs]
    best, at = max(gaps)
    return at if best >= KNEE_MIN_BEND else None


def slo_point(pts: list[Point], slo_p99_ms: float, max_error_rate: float) -> Point | None:
    """The measured point with the highest throughput whose p99 holds the SLO and whose error rate is acceptable.
    Measured, not interpolated: a claim the runs back."""
    ok = [p for p in pts if p.p99_ms <= slo_p99_ms and p.error_rate <= max_error_rate and p.requests > 0]
    return max(ok, key=lambda p: p.qps, default=None)


def scaling(peaks: dict[int, float]) -> list[dict[str, float]]:
    """Efficiency of N workers (or replicas) against the smallest count measured: (QPS_N / QPS_base) / (N / base).
    1.0 is linear scaling; 0.5 means doubling the count gave half the ideal gain."""
    if len(peaks) < 2:
        return []
    base = min(peaks)
    if peaks[base] <= 0:
        return []
    return [
        {"count": n, "peak_qps": q, "speedup": q / peaks[base], "efficiency": (q / peaks[base]) / (n / base)}
        for n, q in sorted(peaks.items())
    ]


def _peaks(pts: list[Point], attr: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in pts:
        n = getattr(p, attr)
        if n is not None:
            out[n] = max(out.get(n, 0.0), p.qps)
    return out


def sync_name(async_name: str, sync_names: set[str], request_type: str = "") -> str | None:
    """The sync twin of an async request name, from the operation tables (``clients.row_operation``); for rows no
    table makes: the same name, or without an ``a`` or ``async_`` prefix."""
    from loadgen import clients

    found = clients.row_operation(request_type, async_name) if request_type else None
    if found is not None:
        twin = clients.adapter(found[0]).operations[found[1]].request_name(False)
        return twin if twin in sync_names else None
    for candidate in (async_name, async_name.removeprefix("async_"), async_name[1:]):
        if candidate in sync_names:
            return candidate
    return None


def sync_vs_async(pts: list[Point]) -> list[dict[str, Any]]:
    """Per layer, operation and level where both flavours ran: QPS and p99 side by side."""
    by: dict[tuple[str, str, str, float, int], Point] = {}
    for p in pts:
        by[(p.type, p.name, p.kind, p.level, p.processes)] = p
    sync_names: dict[str, set[str]] = defaultdict(set)
    for p in pts:
        if not p.is_async:
            sync_names[p.type].add(p.name)
    rows = []
    for (_typ, name, kind, level, procs), a in sorted(by.items()):
        if not a.is_async:
            continue
        twin = sync_name(name, sync_names[a.layer], a.type)
        s = by.get((a.layer, twin, kind, level, procs)) if twin else None
        if s is None:
            continue
        rows.append(
            {
                "layer": a.layer, "operation": s.name, "async_name": name, "kind": kind, "level": level,
                "processes": procs, "sync_qps": s.qps, "async_qps": a.qps,
                "qps_ratio": a.qps / s.qps if s.qps else None, "sync_p99_ms": s.p99_ms, "async_p99_ms": a.p99_ms,
            }
        )  # fmt: skip
    return rows


def differs(driver: str, pts: list[Point]) -> bool:
    """Whether this level's calls waited another way than most levels of its curve (another driver)."""
    known = [p.driver for p in pts if p.driver]
    if not driver or len(set(known)) < 2:
        return False
    usual = max(sorted(set(known)), key=known.count)
    return driver != usual


def analyse(runs: list[Run], *, slo_p99_ms: float | None, max_error_rate: float) -> dict[str, Any]:
    """The report's numbers: one entry per curve, plus sync/async pairs and scaling tables."""
    pts = points(runs)
    out_curves = []
    for (typ, name, kind, procs, replicas), cpts in curves(pts).items():
        k = knee([p.level for p in cpts], [p.qps for p in cpts])
        slo = slo_point(cpts, slo_p99_ms, max_error_rate) if slo_p99_ms is not None else None
        out_curves.append(
            {
                "type": typ, "name": name, "layer": typ.removesuffix("-async"), "kind": kind, "processes": procs,
                "replicas": replicas, "knee": k, "peak_qps": max(p.qps for p in cpts),
                "slo": asdict(slo) if slo else None,
                "levels": [
                    {key: v for key, v in asdict(p).items() if key not in ("type", "name", "kind", "source")}
                    | {"driver_differs": differs(p.driver, cpts)}
                    for p in cpts
                ],
            }
        )  # fmt: skip
    ops: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for p in pts:
        ops[(p.type, p.name)].append(p)
    workers = {f"{t} {n}": s for (t, n), ops_pts in ops.items() if (s := scaling(_peaks(ops_pts, "processes")))}
    by_replicas = {f"{t} {n}": s for (t, n), ops_pts in ops.items() if (s := scaling(_peaks(ops_pts, "replicas")))}
    return {
        "slo_p99_ms": slo_p99_ms,
        "max_error_rate": max_error_rate,
        "curves": out_curves,
        "sync_vs_async": sync_vs_async(pts),
        "worker_scaling": workers,
        "replica_scaling": by_replicas,
    }
