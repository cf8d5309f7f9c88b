"""The report's "where the time goes": Milvus's own time against the client's, per operation and level. The arithmetic
on synthetic results documents; then a real sweep against the embedded Milvus, reported by `loadgen report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from loadgen.milvus.server import ServerInfo
from loadgen.report import document, html, markdown, plots, time_split
from loadgen.report.load import Run


def _server(p50: float, p99: float, mean: float, count: int) -> dict[str, Any]:
    latency = {"count": count, "p50_ms": p50, "p99_ms": p99, "mean_ms": mean, "p99_le_ms": 8.0}
    return {"available": True, "operations": {"Search": {"requests": {"success": count}, "latency": latency}}}


def _results(users: int, server: dict[str, Any] | None, client_mean: float = 4.0) -> dict[str, Any]:
    row = {"requests": 101, "failures": 1, "successes": 100, "rps": 10.0, "p95_ms": 7.0}
    return {
        "format": "milvus-loadgen/results/v2",
        "run": {"users": users, "level": {"users": users}},
        "settings": {"dim": 8, "rows": 300},
        "requests": [
            {**row, "type": "pymilvus", "name": "search", "p50_ms": 3.0, "p99_ms": 8.0, "avg_ms": client_mean},
            # open model: the row's latency counts from the intended send time; its calls' own time is `service`
            {
                **row,
                "type": "pymilvus-async",
                "name": "search",
                "p50_ms": 30.0,
                "p99_ms": 80.0,
                "avg_ms": 40.0,
                "service": {"count": 50, "mean_ms": 2.5, "p50_ms": 2.25, "p90_ms": 4.0, "p99_ms": 6.5, "max_ms": 9.0},
            },
            {**row, "type": "mine", "name": "search", "p50_ms": 1.0, "p99_ms": 1.0, "avg_ms": 1.0},  # no server fn
        ],
        "totals": {"requests": 303, "failures": 3},
        **({"server": server} if server is not None else {}),
    }


def test_split_is_client_minus_server_per_row() -> None:
    rows = time_split.split(_results(4, _server(p50=1.5, p99=6.0, mean=2.0, count=250)))
    assert [(r["type"], r["function"], r["client_from"]) for r in rows] == [
        ("pymilvus", "Search", "latency"),
        ("pymilvus-async", "Search", "service"),
    ]
    sync, aio = rows
    assert (sync["client_p50_ms"], sync["client_p99_ms"], sync["client_mean_ms"]) == (3.0, 8.0, 4.0)
    assert (sync["server_p50_ms"], sync["server_p99_ms"], sync["server_mean_ms"]) == (1.5, 6.0, 2.0)
    assert (sync["overhead_p50_ms"], sync["overhead_p99_ms"], sync["overhead_mean_ms"]) == (1.5, 2.0, 2.0)
    assert sync["overhead_share"] == 0.5 and (sync["client_calls"], sync["server_calls"]) == (100, 250)
    assert (aio["client_mean_ms"], aio["overhead_mean_ms"], aio["overhead_p99_ms"]) == (2.5, 0.5, 0.5)
    assert aio["overhead_share"] == 0.2 and aio["client_calls"] == 50 and aio["server_p99_le_ms"] == 8.0
    assert time_split.split(_results(4, None)) == []
    assert time_split.split(_results(4, {"available": False})) == []


def test_levels_and_the_all_levels_means() -> None:
    runs = [
        Run("a", _results(1, _server(1.0, 2.0, mean=1.0, count=100), client_mean=2.0)),
        Run("a", _results(4, _server(2.0, 6.0, mean=3.0, count=300), client_mean=6.0)),
        Run("b", _results(8, None)),
    ]
    t = time_split.analyse(runs)
    assert [(r["type"], r["level"]) for r in t["rows"]] == [
        ("pymilvus", 1.0), ("pymilvus", 4.0), ("pymilvus-async", 1.0), ("pymilvus-async", 4.0),
    ]  # fmt: skip
    assert t["without_server"] == [{"source": "b", "kind": "users", "level": 8.0}]
    sync = next(r for r in t["all_levels"] if r["type"] == "pymilvus")
    # client: (2 * 100 + 6 * 100) / 200 calls; server: (1 * 100 + 3 * 300) / 400 calls
    assert (sync["levels"], sync["client_mean_ms"], sync["server_mean_ms"]) == (2, 4.0, 2.5)
    assert sync["overhead_mean_ms"] == 1.5 and sync["overhead_share"] == 0.375

    report = {"title": "t", "generated": "now", "time_split": t}
    sec = document._time_split_section(t)
    assert sec.heading == "Where the time goes" and sec.charts == ["time_split"]
    header, body = sec.tables[0]
    first = dict(zip(header, body[0], strict=True))
    assert (first["operation"], first["level"], first["server mean"], first["overhead share"]) == (
        "pymilvus search", "1 users", "1.000", "50%",
    )  # fmt: skip
    assert any("b (8 users)" in line for line in sec.text)
    chart = plots.time_split_chart(t["rows"])
    assert chart is not None and len(chart["png"]) > 1000
    page = html.render({**report, **_empty_report()}, {"time_split": [chart]})
    assert "<h2>Where the time goes</h2>" in page and chart["png"] in page
    assert "| pymilvus search | Search | 1 users |" in markdown.render({**report, **_empty_report()})


def _empty_report() -> dict[str, Any]:
    """What document.sections needs of a report besides the split."""
    analysis = {"curves": [], "slo_p99_ms": None, "sync_vs_async": [], "worker_scaling": {}, "replica_scaling": {}}
    return {"analysis": analysis, "dataset": {}, "inputs": ["a"], "runs": 1}


def test_no_server_figures_says_so() -> None:
    t = time_split.analyse([Run("old", _results(2, None))])
    assert t["rows"] == [] and plots.time_split_chart(t["rows"]) is None
    assert "nothing to split" in " ".join(document._time_split_section(t).text)


# ---- a real sweep ------------------------------------------------------------------------------------------------


@pytest.mark.milvus
@pytest.mark.slow
def test_a_real_sweep_reports_where_the_time_goes(milvus: ServerInfo, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "run", "--host", milvus.uri, "--milvus-metrics-url", milvus.metrics_url, "--sweep-users", "1,4", "-t", "4s",
        "--rows", "500", "--dim", "8", "--collection", "lg_time_split", "--weights", "search=4,insert=1",
        "--out", str(sweep_dir), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "report"
    proc = run_cli("report", str(sweep_dir), "--out", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads((out / "report.json").read_text())["time_split"]
    levels = json.loads((sweep_dir / "sweep.json").read_text())["levels"]
    assert t["without_server"] == [] and len(levels) == 2
    for level in levels:  # every figure is the level's results.json's, client and server
        users = level["level"]["users"]
        server = level["server"]["operations"]
        found = [r for r in t["rows"] if r["level"] == users]
        assert {r["function"] for r in found} >= {"Search", "Insert"}, found
        for r in found:
            m = next(m for m in level["requests"] if (m["type"], m["name"]) == (r["type"], r["name"]))
            lat = server[r["function"]]["latency"]
            assert (r["client_p99_ms"], r["client_mean_ms"], r["client_calls"]) == (
                m["p99_ms"], m["avg_ms"], m["successes"],
            )  # fmt: skip
            assert (r["server_p99_ms"], r["server_mean_ms"], r["server_calls"]) == (
                lat["p99_ms"], lat["mean_ms"], lat["count"],
            )  # fmt: skip
            assert r["overhead_mean_ms"] == pytest.approx(m["avg_ms"] - lat["mean_ms"])
            # the server saw every call the row made (and the other rows' of its function), and its time is part of
            # the client's: whole milliseconds, truncated, can only read lower
            assert r["server_calls"] >= r["client_calls"] > 0 and r["overhead_mean_ms"] >= 0
    assert {r["type"] for r in t["all_levels"]} >= {"pymilvus-async"}  # the class that ran at both levels
    md = (out / "report.md").read_text()
    assert "## Where the time goes" in md and "| pymilvus-async search | Search | 4 users |" in md
    page = (out / "report.html").read_text()
    assert "<h2>Where the time goes</h2>" in page and 'alt="where the time goes' in page
