"""Knee, SLO, scaling and sizing arithmetic on synthetic curves and worked examples with known answers."""

from __future__ import annotations

import pytest

from loadgen.report import sizing
from loadgen.report.analysis import Point, knee, scaling, slo_point, sync_name

LEVELS = [1, 2, 4, 6, 8, 10, 12, 16, 20, 30, 40]


def test_knee_of_a_saturating_curve_is_where_it_saturates() -> None:
    # 100 req/s per user up to 10 users, then flat at 1000: the knee is at 10 users
    assert knee(LEVELS, [min(100.0 * u, 1000.0) for u in LEVELS]) == 10


def test_knee_with_a_soft_bend_and_a_decline_after_it() -> None:
    qps = [min(100.0 * u, 1000.0) - (max(u - 16, 0) * 10.0) for u in LEVELS]  # saturates at 10, sags after 16
    assert knee(LEVELS, qps) == 10


def test_knee_of_an_open_model_curve_achieved_against_target_rate() -> None:
    rates = [50, 100, 200, 300, 400, 600, 800]
    achieved = [min(r, 300.0) for r in rates]  # the server tops out at 300 req/s
    assert knee(rates, achieved) == 300


@pytest.mark.parametrize(
    ("xs", "ys"),
    [
        (LEVELS, [50.0 * u for u in LEVELS]),  # a straight line: no knee inside the measured range
        ([1, 4], [100.0, 350.0]),  # two levels cannot show a bend
        (LEVELS, [500.0] * len(LEVELS)),  # flat from the start: it does not rise
    ],
)
def test_no_knee(xs: list[float], ys: list[float]) -> None:
    assert knee(xs, ys) is None


def _pt(level: float, qps: float, p99: float, failures: int = 0, requests: int = 1000) -> Point:
    return Point(
        type="pymilvus", name="search", kind="users", level=level, processes=1, replicas=None, qps=qps,
        requests=requests, failures=failures, error_rate=failures / requests, avg_ms=p99 / 3, p50_ms=p99 / 4,
        p95_ms=p99 * 0.8, p99_ms=p99, recall=None, source="synthetic",
    )  # fmt: skip


def test_slo_point_is_the_highest_qps_whose_p99_holds() -> None:
    # QPS rises with load while p99 climbs: 20 ms holds up to 8 users (800 req/s)
    pts = [_pt(u, min(100.0 * u, 1000.0), 2.0 * u + 3.0) for u in LEVELS]
    best = slo_point(pts, slo_p99_ms=20.0, max_error_rate=0.01)
    assert best is not None and (best.level, best.qps) == (8, 800.0)
    assert slo_point(pts, slo_p99_ms=4.0, max_error_rate=0.01) is None  # not even one user holds 4 ms


def test_slo_point_skips_levels_with_too_many_errors() -> None:
    pts = [_pt(1, 100.0, 5.0), _pt(2, 200.0, 6.0, failures=50), _pt(4, 150.0, 9.0)]
    best = slo_point(pts, slo_p99_ms=10.0, max_error_rate=0.01)
    assert best is not None and best.level == 4  # 200 req/s at 5% errors does not count


def test_scaling_efficiency_against_the_smallest_count() -> None:
    rows = scaling({1: 100.0, 2: 180.0, 4: 300.0})
    assert [r["count"] for r in rows] == [1, 2, 4]
    assert [round(r["efficiency"], 3) for r in rows] == [1.0, 0.9, 0.75]
    assert rows[2]["speedup"] == pytest.approx(3.0)
    assert scaling({1: 100.0}) == []  # one count: nothing to compare


def test_sync_twin_names_across_layers() -> None:
    assert sync_name("search", {"search", "query"}) == "search"
    assert sync_name("asimilarity_search", {"similarity_search"}) == "similarity_search"
    assert sync_name("aquery", {"query"}) == "query"
    assert sync_name("async_add", {"add"}) == "add"
    assert sync_name("afoo", {"search"}) is None


def test_memory_worked_examples() -> None:
    # 1M x 128-dim float32: 512,000,000 B of raw vectors
    assert sizing.memory("FLAT", 1_000_000, 128).bytes_per_replica == 512_000_000
    # HNSW M=16: + 1M x 2 x 16 x 4 B of links = 640,000,000 B
    assert sizing.memory("HNSW", 1_000_000, 128, {"M": 16}).bytes_per_replica == 640_000_000
    # IVF_FLAT, 1M x 768-dim, nlist 1024: 3,072,000,000 + 1024 x 768 x 4 (3,145,728) + 1M x 4 (4,000,000)
    assert sizing.memory("IVF_FLAT", 1_000_000, 768, {"nlist": 1024}).bytes_per_replica == 3_079_145_728
    auto = sizing.memory("AUTOINDEX", 1_000_000, 128)
    assert auto.bytes_per_replica == 1_000_000 * (128 * 4 + 2 * 18 * 4) and "HNSW M=18" in auto.assumption
    for index in ("FLAT", "IVF_FLAT", "HNSW"):
        assert sizing.memory(index, 10, 8).source.startswith("https://milvus.io/")


@pytest.mark.parametrize(
    ("target", "per_replica", "efficiency", "headroom", "expected"),
    [
        (1000.0, 300.0, 0.9, 0.25, 5),  # 1000 / (300 x 0.9 x 0.75) = 4.94 -> 5
        (200.0, 300.0, 0.9, 0.25, 1),  # 200 <= 300 x 0.75: one replica at 67% load
        (250.0, 300.0, 1.0, 0.25, 2),  # 250 > 225: two replicas
        (900.0, 300.0, 1.0, 0.0, 3),  # exactly three at full load, no headroom
    ],
)
def test_replicas_needed_worked_examples(
    target: float, per_replica: float, efficiency: float, headroom: float, expected: int
) -> None:
    n = sizing.replicas_needed(target, per_replica, efficiency, headroom)
    assert n == expected
    assert sizing.capacity(n, per_replica, efficiency) * (1 - headroom) >= target - 1e-9


def _analysis(curves: list[dict], replica_scaling: dict | None = None, slo: float | None = None) -> dict:
    return {"curves": curves, "replica_scaling": replica_scaling or {}, "slo_p99_ms": slo}


def _curve(name: str, peak: float, replicas: int | None = None, slo_qps: float | None = None) -> dict:
    return {
        "type": "pymilvus", "name": name, "kind": "users", "processes": 1, "replicas": replicas, "peak_qps": peak,
        "slo": {"qps": slo_qps} if slo_qps is not None else None,
    }  # fmt: skip


def test_plan_with_one_replica_count_states_the_assumed_efficiency() -> None:
    a = _analysis([_curve("search", 500.0, slo_qps=400.0), _curve("insert", 80.0)], slo=20.0)
    plan = sizing.plan(a, target_qps=2000.0, vectors=1_000_000, dim=128, index="HNSW", index_params={"M": 16})
    (row,) = plan["rows"]  # writes are not sized: replicas do not multiply them
    assert row["operation"] == "pymilvus search" and row["per_replica_qps"] == 400.0
    assert row["replicas"] == 8  # 2000 / (400 x 0.9 x 0.7) = 7.94 -> 8
    assert row["efficiency_basis"].startswith("assumed") and "assumed 1" in row["assumptions"][0]
    assert row["memory_bytes_total"] == 8 * 640_000_000
    assert not any("the runs measured" in n for n in plan["notes"])  # no shape recorded: nothing to warn about
    plan = sizing.plan(
        a, target_qps=2000.0, vectors=1_000_000, dim=128, index="HNSW", index_params=None, measured_shape=(1000, 32)
    )
    assert any("the runs measured 1,000 vectors of dim 32, not the target's 1,000,000 of dim 128" in n
               for n in plan["notes"])  # fmt: skip


def test_plan_uses_measured_replica_scaling() -> None:
    table = scaling({1: 400.0, 2: 720.0})  # efficiency 0.9 at 2 replicas
    a = _analysis(
        [_curve("search", 400.0, replicas=1), _curve("search", 720.0, replicas=2)], {"pymilvus search": table}
    )
    plan = sizing.plan(a, target_qps=1000.0, vectors=1000, dim=8, index="FLAT", index_params=None, headroom=0.2)
    (row,) = plan["rows"]
    assert row["per_replica_qps"] == 400.0 and row["efficiency"] == pytest.approx(0.9)
    assert row["efficiency_basis"] == "measured across 1, 2 replicas" and not row["assumptions"]
    assert row["replicas"] == 4  # 1000 / (400 x 0.9 x 0.8) = 3.47 -> 4


def test_plan_without_a_level_holding_the_slo_does_not_size_it() -> None:
    plan = sizing.plan(
        _analysis([_curve("search", 500.0)], slo=1.0), target_qps=100.0, vectors=10, dim=8, index="FLAT",
        index_params=None,
    )  # fmt: skip
    assert plan["rows"] == [] and "no measured level held" in plan["not_sized"][0]
