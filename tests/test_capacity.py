"""``loadgen capacity`` (issue 16): the search on synthetic latency curves, and one small real search."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import run_cli

from loadgen.cli.capacity import Measurement, Slo, line, measurement, search, step_seconds
from loadgen.milvus.server import ServerInfo

CAPACITY = 400.0  # the synthetic server's saturation point, req/s


def queueing_p99(rate: float) -> float:
    """An M/M/1-like curve: 2 ms at no load, growing without bound as the rate nears CAPACITY."""
    return 2.0 * CAPACITY / (CAPACITY - rate) if rate < CAPACITY else float("inf")


def curve(p99=queueing_p99, **extra: float) -> tuple[list[float], object]:
    tried: list[float] = []

    def measure(rate: float) -> Measurement:
        tried.append(rate)
        return Measurement(rate=rate, p99_ms=p99(rate), error_rate=0.0, **extra)

    return tried, measure


@pytest.mark.parametrize("slo_ms", [3.0, 5.0, 20.0])
@pytest.mark.parametrize("start", [10.0, 100.0, 1000.0])
def test_finds_the_rate_where_the_curve_crosses_the_slo(slo_ms: float, start: float) -> None:
    truth = CAPACITY * (1 - 2.0 / slo_ms)  # where queueing_p99(rate) == slo_ms
    tried, measure = curve()
    out = search(measure, Slo(p99_ms=slo_ms), start=start, tolerance=0.05, max_steps=20)
    lo, hi = out.bracket
    assert lo is not None and hi is not None
    assert lo <= truth <= hi and hi - lo <= 0.05 * lo  # the answer is within one bisection step of the truth
    assert out.answer == lo and "bracket within 5%" in out.stopped
    assert [s.measurement.rate for s in out.steps] == tried  # every level it tried is kept, in order
    assert all(s.holds == (queueing_p99(s.measurement.rate) <= slo_ms) for s in out.steps)


def test_noise_does_not_break_the_bracket_invariant() -> None:
    rng = random.Random(3)
    _, measure = curve(lambda r: queueing_p99(r) * rng.uniform(0.9, 1.1))
    out = search(measure, Slo(p99_ms=10.0), start=50.0, tolerance=0.05, max_steps=20)
    held = [s.measurement.rate for s in out.steps if s.holds]
    failed = [s.measurement.rate for s in out.steps if not s.holds]
    assert out.answer == max(r for r in held if r < min(failed))  # the answer held, below everything that failed
    assert out.bracket[1] == min(r for r in failed if r > out.answer)


def test_stop_rules() -> None:
    _, measure = curve()
    budget = search(measure, Slo(p99_ms=5.0), start=10.0, max_steps=3)
    assert len(budget.steps) == 3 and "step budget (3)" in budget.stopped and budget.answer == 40.0
    capped = search(measure, Slo(p99_ms=5.0), start=50.0, max_rate=100.0)
    assert capped.answer == 100.0 and "--max-rate 100" in capped.stopped
    nothing = search(measure, Slo(p99_ms=1.0), start=100.0, min_rate=10.0)
    assert nothing.answer is None and "no rate down to 10" in nothing.stopped
    assert "no rate held" in line(nothing, Slo(p99_ms=1.0))
    _, saturating = curve(generator_saturated=True)
    gen = search(saturating, Slo(p99_ms=50.0), start=100.0)
    assert len(gen.steps) == 1 and "generator saturated" in gen.stopped


def test_recall_errors_and_dropped_sends_also_bound_the_rate() -> None:
    slo = Slo(p99_ms=50.0, min_recall=0.9, max_error_rate=0.01)
    assert slo.judge(Measurement(100.0, 10.0, 0.0, recall=0.95)) == []
    assert slo.judge(Measurement(100.0, 10.0, 0.02, recall=0.95)) == ["errors 2.00% > 1.00%"]
    assert slo.judge(Measurement(100.0, 10.0, 0.0, recall=0.85)) == ["recall 0.8500 < 0.9"]
    assert slo.judge(Measurement(100.0, 10.0, 0.0)) == ["no recall measured"]
    assert slo.judge(Measurement(100.0, 10.0, 0.0, recall=0.95, dropped_share=0.2)) == ["20.0% of sends dropped"]
    assert step_seconds(10.0, 1000, 5.0) == 100 and step_seconds(1000.0, 1000, 5.0) == 5.0


def test_measurement_reads_a_results_document() -> None:
    results = {
        "requests": [
            {"type": "pymilvus", "name": "search", "successes": 90, "p99_ms": 4.0},
            {"type": "pymilvus-async", "name": "search", "successes": 80, "p99_ms": 6.5},
            {"type": "pymilvus", "name": "get", "successes": 0, "p99_ms": 0.0},  # nothing succeeded: no p99
        ],
        "totals": {"fail_ratio": 0.01},
        "recall": {"pymilvus search": {"mean": 0.97}, "pymilvus-async search": {"mean": 0.95}},
        "open_loop": {"intended": 200, "dropped": 4, "achieved_rate": 98.0},
        "generator": {"saturated": False},
    }
    m = measurement(results, 100.0)
    assert (m.p99_ms, m.error_rate, m.recall, m.dropped_share, m.achieved_rate) == (6.5, 0.01, 0.95, 0.02, 98.0)


@pytest.mark.milvus
@pytest.mark.slow
def test_capacity_against_the_embedded_milvus(milvus: ServerInfo, tmp_path: Path) -> None:
    out = tmp_path / "cap"
    proc = run_cli(
        "capacity", "--host", milvus.uri, "--slo-p99-ms", "1000", "--max-error-rate", "0.01",
        "--start-rate", "20", "--max-rate", "40", "--min-samples", "40", "-t", "2s", "-u", "4",
        "--rows", "500", "--dim", "16", "--weights", "search=1", "--collection", "lg_capacity", "--out", str(out),
        "--price-per-node-hour", "0.9", "--nodes", "2", "--price-per-generator-hour", "0.25",
        timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    last, priced = proc.stdout.strip().splitlines()[-2:]
    # a generous SLO at a small scale: both rates hold, the search stops at --max-rate, said in one line
    assert last.startswith("capacity: 40 req/s holds p99 <= 1000 ms, errors <= 1.00%"), last
    doc = json.loads((out / "capacity.json").read_text())
    assert [s["rate"] for s in doc["steps"]] == [20.0, 40.0] and doc["answer"] == 40.0
    # the answer's cost, from the inputs shown: 2 nodes x 0.9/h serve 40 req/s = 144,000 queries an hour
    assert doc["cost"]["per_million_queries"] == pytest.approx(1.8 / 144_000 * 1e6) and doc["cost"]["nodes"] == 2
    assert doc["cost"]["qps_per_dollar_hour"] == pytest.approx(40 / 1.8)
    assert priced.startswith("cost at the SLO: 2 node(s) x 0.9 USD/h = 1.8 USD/h; at 40 req/s: 12.5 USD per million")
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["model"] == "open" and [lvl["level"] for lvl in sweep["levels"]] == [{"rate": 20.0}, {"rate": 40.0}]
    for s, lvl in zip(doc["steps"], sweep["levels"], strict=True):
        assert s["p99_ms"] == max(r["p99_ms"] for r in lvl["requests"] if r["successes"])
    report = run_cli("report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo-p99-ms", "10", "--min-recall", "0.9"], "--min-recall needs --dataset"),
        (["--slo-p99-ms", "0"], "--slo-p99-ms must be positive"),
        (["--slo-p99-ms", "10", "--start-rate", "100", "--max-rate", "50"], "0 < --start-rate <= --max-rate"),
        (["--slo-p99-ms", "10", "--sweep-rates", "1,2"], "chooses its own rates"),
        (["--slo-p99-ms", "10", "-t", "ten"], "-t/--run-time: not a run time"),
        (["--slo-p99-ms", "10", "--milvus-metrics-url", "ftp://x"], "--milvus-metrics-url 'ftp://x': expected http"),
        (["--slo-p99-ms", "10", "--prometheus-port", "70000"], "--prometheus-port must be 0 (off) or a TCP port"),
        (["--slo-p99-ms", "10", "--price-per-node-hour", "-1"], "--price-per-node-hour must be positive"),
        (["--slo-p99-ms", "10", "--price-per-generator-hour", "1"], "--price-per-generator-hour needs"),
        (["--slo-p99-ms", "10", "--max-index-lag-s", "0"], "--max-index-lag-s must be positive"),
        (["--slo-p99-ms", "10", "--max-index-lag-s", "5", "--stream-rates", "insert=5"], "drop --stream-rates"),
    ],
)
def test_bad_options_are_one_line_errors_before_anything_starts(args: list[str], message: str) -> None:
    proc = run_cli("capacity", *args, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("loadgen: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "starting embedded Milvus" not in proc.stderr
