"""--rounds: levels measured several times, interleaved; each figure a median with its spread, in the sweep's table
and the report; a --baseline delta inside the spread marked as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from loadgen.cli import sweep
from loadgen.milvus.server import ServerInfo
from loadgen.report.analysis import analyse
from loadgen.report.diff import diff
from loadgen.report.document import sections
from loadgen.report.load import Run
from loadgen.stats import rounds


def _round(users: int, rnd: int, p99: float, rps: float) -> dict[str, Any]:
    row = {"type": "pymilvus", "name": "search", "requests": 100, "failures": rnd - 1, "rps": rps, "avg_ms": 2.0,
           "p50_ms": p99 / 2, "p95_ms": p99 * 0.8, "p99_ms": p99}  # fmt: skip
    return {"format": "milvus-loadgen/results/v2", "settings": {}, "requests": [row], "totals": {}, "failures": [],
            "run": {"users": users, "level": {"users": users}, "round": rnd, "rounds": 3}}  # fmt: skip


def test_rounds_interleave_levels_up_then_down() -> None:
    assert rounds.schedule([1, 5, 10], 3) == [(1, 1), (1, 5), (1, 10), (2, 10), (2, 5), (2, 1), (3, 1), (3, 5),
                                               (3, 10)]  # fmt: skip
    assert rounds.schedule(["a"], 1) == [(1, "a")]
    assert rounds.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "rounds": 3}
    assert rounds.overlap(rounds.spread([1, 2]), rounds.spread([2.5, 3])) is False
    assert rounds.overlap(rounds.spread([1, 2.6]), rounds.spread([2.5, 3])) is True
    assert rounds.overlap(rounds.spread([1]), rounds.spread([2.5, 3])) is None  # one round: spread unknown
    assert rounds.cell(2.0, rounds.spread([1, 2, 3]), 2) == "2.00 (1.00-3.00)" and rounds.cell(2.0, None, 1) == "2.0"


def test_a_levels_rounds_are_one_point_with_its_spread_and_a_delta_inside_it_is_marked() -> None:
    before = [
        Run("before", _round(10, r, p99, rps)) for r, p99, rps in ((1, 10.0, 500), (2, 14.0, 480), (3, 12.0, 520))
    ]
    [curve] = analyse(before, slo_p99_ms=None, max_error_rate=0.5)["curves"]
    [level] = curve["levels"]
    assert level["rounds"] == 3 and level["p99_ms"] == 12.0 and level["qps"] == 500
    assert level["spread"]["p99_ms"] == {"median": 12.0, "min": 10.0, "max": 14.0, "rounds": 3}
    assert level["requests"] == 300 and level["failures"] == 3  # summed, not medians
    noise = [Run("after", _round(10, r, p99, 500)) for r, p99 in ((1, 13.0), (2, 15.0), (3, 16.0))]  # +25 %
    change = [Run("after", _round(10, r, p99, 500)) for r, p99 in ((1, 30.0), (2, 31.0), (3, 33.0))]
    [inside] = diff(before, noise)["rows"]
    [outside] = diff(before, change)["rows"]
    assert inside["within_spread"]["p99"] is True and outside["within_spread"]["p99"] is False
    doc = {"analysis": analyse(before, slo_p99_ms=None, max_error_rate=0.5), "dataset": {}, "inputs": ["b"],
           "runs": 3, "diff": diff(before, noise)}  # fmt: skip
    [table] = next(s for s in sections(doc) if s.heading == "Baseline vs candidate").tables[:1]
    assert table[1][0][7] == "+25.0% (within spread)" and table[1][0][5] == "12.00 (10.00-14.00)"
    once = [Run("b", {**_round(10, 1, 10.0, 500), "run": {"users": 10, "level": {"users": 10}}})]
    text = next(s for s in sections({**doc, "diff": diff(once, once)}) if s.heading == "Baseline vs candidate").text
    assert any("--rounds 3" in t for t in text)  # one round a side: the report says the spread is unknown


def test_rounds_is_refused_without_levels() -> None:
    out = run_cli("run", "--host", "http://127.0.0.1:1", "--rounds", "2")
    assert out.returncode == 2 and "unrecognized arguments: --rounds" in out.stderr  # only sweep/capacity take it
    out = run_cli("sweep", "--users", "1", "--rounds", "0", "--host", "http://127.0.0.1:1")
    assert out.returncode == 2 and out.stderr.startswith("loadgen: error:") and "--rounds" in out.stderr


@pytest.mark.milvus
def test_a_sweep_with_rounds_keeps_every_round_and_shows_the_spread(milvus: ServerInfo, tmp_path: Path) -> None:
    out = run_cli(
        "sweep", "--users", "1,2", "--rounds", "2", "--host", milvus.uri, "--rows", "300", "--dim", "16",
        "--weights", "search=1", "--collection", "lg_rounds", "-t", "2s", "--out", str(tmp_path / "s"), "PymilvusUser",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert doc["rounds"] == 2
    assert [(lv["level"]["users"], lv["run"]["round"]) for lv in doc["levels"]] == [(1, 1), (2, 1), (2, 2), (1, 2)]
    for users in (1, 2):
        for rnd in (1, 2):
            assert (tmp_path / "s" / f"users-{users}" / f"round-{rnd}" / "results.json").exists()
    assert "medians of 2 rounds" in out.stdout
    table = sweep.render(doc)
    assert table in out.stdout
    report = run_cli("report", str(tmp_path / "s"), "--baseline", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr[-2000:]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "(within spread)" in md and "medians of rounds" in md


def test_a_capacity_step_in_rounds_is_judged_on_its_medians() -> None:
    from loadgen.cli.capacity import Measurement, Slo, over_rounds

    steps = [Measurement(100, p99, err, generator_saturated=sat)
             for p99, err, sat in ((9.0, 0.0, False), (30.0, 0.02, False), (11.0, 0.0, True))]  # fmt: skip
    m = over_rounds(steps)
    assert (m.rate, m.p99_ms, m.error_rate, m.generator_saturated) == (100, 11.0, 0.0, True)
    assert Slo(p99_ms=12.0).judge(m) == [] and Slo(p99_ms=10.0).judge(m)  # one slow round does not decide it
    assert over_rounds(steps[:1]) is steps[0]
