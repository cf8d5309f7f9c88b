"""The reports of a run stopped by a signal, in the fast tier: real Locust processes on the fake store (no Milvus).
The run's report.html is loadgen's, written with results.json once the users have stopped: it says the run was
stopped early and shows results.json's figures. Locust's own report (``--html``, here locust-report.html) is
written by Locust on no SIGTERM and, on SIGINT, from before its users stopped; loadgen writes it again once they
have, marked partial, with the numbers of results.json. An ``--html`` naming report.html itself is left to ours."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from run_report_html import check_same_figures

from loadgen.locust import partial_report

LOCUSTFILE = "tests/locustfiles/fake_users.py"


def _locust_template() -> str:
    spec = importlib.util.find_spec("locust")  # the file only: importing locust here would monkey-patch pytest
    assert spec is not None and spec.submodule_search_locations
    return (Path(next(iter(spec.submodule_search_locations))) / "webui" / "dist" / "report.html").read_text()


def test_mark_finds_its_places_in_the_installed_locusts_report() -> None:
    """A Locust upgrade that renames the title or the page's root would leave the page unmarked: caught here."""
    page = _locust_template()
    marked = partial_report.mark(page, "partial: <stopped> & cut")
    assert marked.count(f'id="{partial_report.BANNER_ID}"') == 1
    assert "<title>Locust (partial: &lt;stopped&gt; &amp; cut)</title>" in marked  # escaped: no markup injected
    assert marked.count('<div id="root"></div>') == 1 and len(marked) > len(page)


def _report(out: Path) -> dict[str, Any]:
    """Locust's own report: the figures its page script reads from ``window.templateArgs``."""
    page = (out / "locust-report.html").read_text()
    m = re.search(r"window\.templateArgs = (\{.*\})\n", page)
    assert m, "no templateArgs in report.html"
    return {"page": page, **json.loads(m.group(1))}


def _start(out: Path, run_time: str, html: str = "locust-report.html") -> subprocess.Popen[str]:
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", "--headless",
         "-u", "4", "-r", "4", "-t", run_time, "--weights", "search=1", "--only-summary",
         "--csv", str(out / "stats"), "--csv-full-history", "--html", str(out / html),
         "--results-dir", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(out / "locust.log").open("w"), text=True,
        start_new_session=True,
    )  # fmt: skip


def _requests_counted(out: Path) -> bool:
    """Locust's per-second history shows requests done: the load is running, not a guess."""
    history = out / "stats_stats_history.csv"
    rows = history.read_text().splitlines() if history.exists() else []
    if not rows or "Total Request Count" not in rows[0].split(","):
        return False
    col = rows[0].split(",").index("Total Request Count")
    return any(int(r.split(",")[col] or 0) > 0 for r in rows[1:] if r.count(",") >= col)


def _stop(out: Path, proc: subprocess.Popen[str], sig: int) -> int:
    try:
        deadline = time.monotonic() + 60
        while not _requests_counted(out):
            assert proc.poll() is None and time.monotonic() < deadline, (out / "locust.log").read_text()[-3000:]
            time.sleep(0.2)  # polling a file another process writes: there is no event to wait on
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code


def _says_stopped_early(out: Path) -> None:
    """The run's own report.html: stopped early, in its title and banner, with results.json's figures."""
    page = check_same_figures(out)
    why = partial_report.NOTE.removeprefix("partial: ")  # "stopped by a signal (Ctrl-C or SIGTERM) ..."
    assert "partial: stopped early" in page.title and f"Stopped early: {why}." in page.banner


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_writes_a_partial_report(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code = _stop(out, _start(out, "2m"), sig)
    log = (out / "locust.log").read_text()
    assert code == 0, log[-3000:]
    results = json.loads((out / "results.json").read_text())
    _says_stopped_early(out)
    report = _report(out)
    assert report["profile"] == partial_report.NOTE and results["run"]["partial"] == partial_report.NOTE
    assert f'id="{partial_report.BANNER_ID}"' in report["page"]
    total = next(r for r in report["requests_statistics"] if r["name"] == "Aggregated")
    assert total["num_requests"] == results["totals"]["requests"] > 0  # the same numbers as results.json
    assert total["num_failures"] == results["totals"]["failures"] == 0
    names = {(r["method"], r["name"]) for r in report["requests_statistics"] if r["name"] != "Aggregated"}
    assert names == {(m["type"], m["name"]) for m in results["requests"]}
    assert "partial report written to" in log and "Traceback" not in log, log[-3000:]


def test_a_run_that_ends_on_time_is_not_marked(tmp_path: Path) -> None:
    """The control: Locust's own report of a whole run, untouched, and no partial mark in results.json."""
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(out, "2s")
    assert proc.wait(timeout=60) == 0, (out / "locust.log").read_text()[-3000:]
    report = _report(out)
    assert not report["profile"] and partial_report.BANNER_ID not in report["page"]
    assert "partial" not in json.loads((out / "results.json").read_text())["run"]
    page = check_same_figures(out)
    assert "partial" not in page.title and not page.banner and "locust-report.html" in page.links


def test_an_html_option_naming_report_html_is_left_to_ours(tmp_path: Path) -> None:
    """``--html DIR/report.html`` with ``--results-dir DIR`` (a plain locust command): Locust writes its report
    there first (on SIGINT, before ``quitting``), then loadgen's takes its place, and the stop rewrites no Locust
    report over it."""
    out = tmp_path / "out"
    out.mkdir()
    code = _stop(out, _start(out, "2m", html="report.html"), signal.SIGINT)
    assert code == 0, (out / "locust.log").read_text()[-3000:]
    _says_stopped_early(out)
    assert "templateArgs" not in (out / "report.html").read_text()
    assert not check_same_figures(out).links.count("report.html")  # no link to itself


QUIET_WRITER = """
import csv, io, os
from types import SimpleNamespace
from locust.stats import StatsCSVFileWriter
from loadgen.locust import shutdown

shutdown._quiet_csv_writer()
shutdown._quiet_csv_writer()  # once only, however often init runs
closed = io.StringIO()
closed.close()
fake = SimpleNamespace(requests_csv_filehandle=closed, requests_csv_writer=csv.writer(closed),
                       requests_csv_columns=["x"])
StatsCSVFileWriter.stats_writer(fake)  # Locust closed the files at shutdown: the writer ends, quietly
fake.requests_csv_filehandle = io.StringIO()  # files open: any other error is a real one
try:
    StatsCSVFileWriter.stats_writer(fake)
except ValueError:
    print("raised")
"""


def test_the_csv_writer_ends_quietly_once_locust_closed_its_files() -> None:
    """Locust's SIGTERM shutdown closes the CSV files and exits without stopping the writer greenlet: if anything
    yields on the way out, the writer wrote to a closed file and a traceback landed in a run that ended well."""
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.run([sys.executable, "-c", QUIET_WRITER], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.split() == ["raised"]
