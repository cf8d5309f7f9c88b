"""A run's report.html is loadgen's (``loadgen.stats.run_page``): for real `loadgen run`s against the session Milvus,
every figure on it is results.json's (store calls with their TOTAL, flows apart, client vs server, checks), and
Locust's own report is kept beside it as locust-report.html, linked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from run_report_html import check_same_figures, ms, rows

from loadgen import clients
from loadgen.milvus.server import ServerInfo
from loadgen.stats import client_server

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
SMALL = ["--rows", "300", "--dim", "32", "-t", "4s"]


@pytest.mark.parametrize(
    ("case", "argv"),
    [
        ("flows", ["-f", "examples/search_then_fetch.py", "-u", "3"]),
        ("2 worker processes", ["--processes", "2", "-u", "4", "--weights", "search=4,insert=1,query=1"]),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_report_html_shows_the_figures_of_results_json(
    milvus: ServerInfo, tmp_path: Path, case: str, argv: list[str]
) -> None:
    out = tmp_path / "out"
    collection = "lg_rr_" + ("flows" if case == "flows" else "procs")
    proc = run_cli(
        "run", "--host", milvus.uri, "--milvus-metrics-url", milvus.metrics_url, *argv, *SMALL,
        "--collection", collection, "--check-p99-ms", "60000", "--out", str(out), timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["totals"]["requests"] > 0 and results["totals"]["failures"] == 0, results["failures"]
    page = check_same_figures(out)
    if case == "flows":
        assert "flows" in page.tables and results["flows"]
        steps = rows(page.tables["flows"][1])
        assert {(s["flow"], s["step"]) for s in steps} == {
            (f, s["step"]) for f, e in results["flows"].items() for s in e["steps"]
        }
    # client vs server: the client's p99 beside Milvus's own, per row that calls a Milvus function
    split = client_server.split(results, clients.server_function)
    assert split, results.get("server")
    shown = rows(page.tables["server"][0])
    assert [(r["operation"], r["client p99"], r["server p99"]) for r in shown] == [
        (f"{s['type']} {s['name']}", ms(s["client_p99_ms"]), ms(s["server_p99_ms"])) for s in split
    ]
    assert rows(page.tables["checks"][0]) == [{"check": "--check-p99-ms", "limit": "60000"}]
    assert "generator" in page.tables  # the generator's own load, per process
    if case != "flows":
        assert len(rows(page.tables["generator"][0])) == 2  # one row per worker
    # Locust's own report, for its charts: kept under another name and linked; ours is not marked partial
    assert "locust-report.html" in page.links and "templateArgs" in (out / "locust-report.html").read_text()
    assert "results.json" in page.links and not page.banner and "partial" not in page.title
    total = next(line for line in proc.stdout.splitlines() if " TOTAL " in line)
    assert total.split()[1] == str(results["totals"]["requests"])  # the summary's TOTAL: store calls, as the page
