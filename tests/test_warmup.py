"""A warm-up left out of every figure alike: when Locust resets its statistics (``--reset-stats`` at the end of
spawning, on the master and on each worker; the web UI's button; loadgen's ``--warmup``), every figure of loadgen
resets with them, so results.json's rows count the calls Locust counts. Fake store, plain ``locust``, as users run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ROOT, master_port, run_cli

from loadgen.milvus.server import free_ports
from loadgen.stats.resets import ResetRecord, line, report_lines
from loadgen.stats.results import render_table
from loadgen.web.table import rows_of

LOCUSTFILE = "tests/locustfiles/fake_users.py"
MIX = "search=6,insert=2,delete=1,fail=1"  # with failures: a row's requests are its successes and its failures


def locust(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], int, float]:
    """A plain headless ``locust`` over the fake store: its exit, results.json, Locust's own request count and how
    long the whole command took (an upper bound of any window in it, however busy the machine)."""
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", "--headless",
         "--results-dir", str(out), "--json-file", str(out / "locust"), "--only-summary", "--weights", MIX, *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert (out / "results.json").exists(), proc.stderr[-3000:]
    locust_total = sum(int(e["num_requests"]) for e in json.loads((out / "locust.json").read_text()))
    return proc, json.loads((out / "results.json").read_text()), locust_total, time.monotonic() - began


def assert_one_population(res: dict[str, Any], locust_total: int) -> None:
    """Every row's HDR histogram holds exactly its successful calls, and the rows add up to Locust's count."""
    assert res["requests"]
    for m in res["requests"]:
        assert m["successes"] + m["failures"] == m["requests"], m
    assert res["totals"]["requests"] == locust_total


# with workers: the slow tier (`make test`), where fewer processes compete for the workers' heartbeats
@pytest.mark.parametrize("processes", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_reset_stats_resets_every_figure_with_locusts(tmp_path: Path, processes: int) -> None:
    extra = ["--processes", str(processes), *master_port()] if processes else []
    # paced (the open model): a busy machine must not starve the workers' heartbeats
    proc, res, total, elapsed = locust(
        tmp_path, "-u", "6", "-r", "3", "-t", "5s", "--reset-stats", "--arrival-rate", "150", *extra
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # the fail task's failures: Locust's exit code for them
    assert proc.stderr.count("Resetting stats") == 1 + processes  # the master and every worker reset
    assert_one_population(res, total)
    warm = res["run"]["warmup"]
    assert warm["by"] == "reset-stats" and warm["resets"] == 1 and warm["after_s"] > 0, warm
    if not processes:  # the ramp-up is out of the window too. With workers, Locust's window starts at the oldest
        # start among the reports merged since the reset: one a worker sent before it heard of the reset is older
        assert res["totals"]["window_s"] < elapsed - warm["after_s"]
    assert "warm-up: the first" in render_table(res) and "--reset-stats, at the end of spawning" in render_table(res)


@pytest.mark.parametrize("processes", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_warmup_leaves_its_window_out_of_every_figure_on_every_worker(tmp_path: Path, processes: int) -> None:
    rate = 150.0
    extra = ["--processes", str(processes), *master_port()] if processes else []
    proc, res, total, elapsed = locust(
        tmp_path, "-u", "4", "-r", "4", "-t", "5s", "--warmup", "2s", "--arrival-rate", f"{rate:g}", *extra
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "warm-up over (2s)" in proc.stderr
    assert_one_population(res, total)
    warm = res["run"]["warmup"]
    assert warm["warmup_s"] == 2.0 and warm["by"] == "warmup" and warm["after_s"] >= 2.0, warm
    # bounds that hold however busy the machine: what is left after the warm-up, at most (with workers, a report
    # sent just before the reset reached a worker may start Locust's window up to one report interval earlier)
    assert 0 < res["totals"]["window_s"] < elapsed - warm["after_s"] + 3.0
    ol = res["open_loop"]  # the schedule's counts start again with the figures; its rate stays
    assert ol["target_rate"] == rate and 0 < ol["window_s"] < elapsed - warm["after_s"], ol
    assert abs(ol["intended"] - rate * ol["window_s"]) < 0.35 * rate * ol["window_s"], ol
    assert abs(ol["sent"] - total) <= 0.1 * total + 12, (ol, total)  # a send before the reset may answer after it
    nodes = res["generator"]["nodes"]
    assert nodes and all(n["wall_s"] < elapsed - warm["after_s"] for n in nodes.values())
    said = "(reset by --warmup)"
    assert "warm-up: the first 2." in render_table(res) and said in render_table(res)  # the summary
    tab = rows_of(SimpleNamespace(runner=None), SimpleNamespace(phase="", error=""), res)  # the web UI's tab
    assert any(said in row["operation"] for row in tab if row["layer"] == "run")
    proc = run_cli("report", str(tmp_path), "--out", str(tmp_path / "report"))  # the report
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Warm-up: the first 2." in (tmp_path / "report" / "report.md").read_text()


def test_a_warmup_not_shorter_than_the_run_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", "--headless",
         "-t", "3s", "--warmup", "3s", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "loadgen: error: --warmup 3s is not shorter than --run-time 3s: nothing would be measured" in proc.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_warmup_as_long_as_the_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    proc = run_cli("run", "-t", "5s", "--warmup", "5s", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "loadgen: error: --warmup 5s is not shorter than --run-time 5s: nothing would be measured"
    )
    assert not (tmp_path / "out").exists()


def test_the_web_ui_button_resets_every_figure_once() -> None:
    """The button fires ``events.reset_stats`` and then calls ``reset_all``: one reset of ours, said to be its."""
    from locust.env import Environment
    from locust.user import User

    from loadgen.locust import warmup
    from loadgen.stats.histograms import HistogramListener

    class _Nobody(User):
        abstract = True

    env = Environment(user_classes=[_Nobody])
    env.create_local_runner()
    resets = warmup.install(env)
    assert warmup.install(env) is resets  # once per environment
    hist = HistogramListener(env)
    fired: list[int] = []
    env.events.reset_stats.add_listener(lambda **_: fired.append(1))
    resets.begin(0.0)

    def call() -> None:
        env.events.request.fire(request_type="t", name="n", response_time=2.0, response_length=0, exception=None,
                                context={})  # fmt: skip

    call()
    assert env.stats.total.num_requests == 1 and hist.histograms.percentiles("t", "n")["count"] == 1
    env.events.reset_stats.fire()  # what the web UI's /stats/reset does, in its order
    env.stats.reset_all()
    assert fired == [1] and resets.record.last_by == "web-ui" and resets.record.count == 1
    assert hist.histograms.percentiles("t", "n")["count"] == 0 and env.stats.total.num_requests == 0
    call()
    env.stats.reset_all()  # anyone else's reset_all (no event of its own): the event is fired for it
    assert fired == [1, 1] and resets.record.last_by == "reset_all" and resets.record.count == 2
    assert hist.histograms.percentiles("t", "n")["count"] == 0
    env.runner.quit()


def test_the_record_and_its_line() -> None:
    rec = ResetRecord(warmup_s=10.0, started_at=100.0)
    assert line({"warmup": rec.section()}).startswith("warm-up: --warmup 10s never ended")
    rec.reset("warmup", 110.02)
    section = rec.section()
    assert section == {"warmup_s": 10.0, "resets": 1, "by": "warmup", "after_s": 10.02}
    said = line({"warmup": section})
    assert said == "warm-up: the first 10.0 s left out of every figure (reset by --warmup)"
    assert ResetRecord().section() == {} and line({}) == ""
    assert report_lines([{"warmup": section}, {}]) == [f"{said} (1 of 2 levels)"]


def _get_json(url: str, data: bytes | None = None) -> Any:
    try:
        return json.loads(urllib.request.urlopen(url, data=data, timeout=5).read().decode() or "null")
    except (OSError, ValueError):
        return None


def _until(cond: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def test_the_web_ui_reset_button_resets_the_tab_and_results_with_locusts(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "locust.log"
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--host", "http://127.0.0.1:1", "--autostart",
         "-u", "4", "-r", "4", "--arrival-rate", "100", "--web-host", "127.0.0.1", "--web-port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:

        def locust_total() -> int:
            stats = _get_json(url + "/stats/requests") or {}
            return int(next((r["num_requests"] for r in stats.get("stats", []) if r["name"] == "Aggregated"), 0))

        assert _until(lambda: locust_total() > 400, 60), log.read_text()[-2000:]
        before = locust_total()
        assert _get_json(url + "/stats/reset", data=b"") is None  # the button (a POST); Locust answers "ok"
        assert _until(lambda: 0 < locust_total() < before, 10)  # it started again (the page's answer is cached)
        _get_json(url + "/stop", data=b"")
        assert _until(lambda: (_get_json(url + "/stats/requests") or {}).get("state") == "stopped", 30)
        res = _get_json(url + "/loadgen/results.json")
        assert res["run"]["warmup"]["by"] == "web-ui", res["run"]
        # Locust's page answers from a cache of a few seconds: the same count once it is renewed
        assert _until(lambda: locust_total() == res["totals"]["requests"], 15), (locust_total(), res["totals"])
        assert_one_population(res, res["totals"]["requests"])
        assert "(reset by the web UI's Reset Stats)" in render_table(res)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
