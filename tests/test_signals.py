"""Ctrl-C (SIGINT) and SIGTERM end `loadgen` within seconds in every phase, keep the partial results there are, and
leave no process (Locust, its workers, the embedded Milvus) and no embedded data dir behind.

The phases after the server's start run against the session's Milvus (--host, a collection per test): what a
signal does to an embedded server is the first case here, and test_lifecycle's Ctrl-C under load (and test_webui's
for `loadgen ui`) stop one that carries users.

Each case waits for the phase to show in the output (or, for steady load, for the per-second stats history to count
requests), then sends the signal to the `loadgen` process only, as `kill` would; a terminal's Ctrl-C also reaches
only loadgen, since Locust runs in a session of its own.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT
from pymilvus import MilvusClient
from run_report_html import check_same_figures

from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]

SMALL = ["--rows", "200", "--dim", "8"]


def _on(milvus: ServerInfo, collection: str) -> list[str]:
    return ["--host", milvus.uri, "--collection", collection]


STOP_WITHIN_S = 20.0  # from the signal to the exit of loadgen, Milvus stopped included (its SIGTERM grace is 5 s)


def _children() -> dict[int, int]:
    """pid -> parent pid of every live (non-zombie) process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


@dataclass
class Run:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    seen_pids: set[int] = field(default_factory=set)  # every descendant seen while it ran
    done: bool = False

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, cond: Callable[[], bool], seconds: float, what: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if cond():
                return
            assert self.proc.poll() is None, f"exited before {what}:\n{self.text()[-3000:]}"
            time.sleep(0.1)
        pytest.fail(f"no {what} within {seconds:g} s:\n{self.text()[-3000:]}")

    def wait_line(self, pattern: str, seconds: float = 240) -> None:
        self.wait_for(lambda: any(re.search(pattern, line) for line in self.lines), seconds, repr(pattern))


def _start(*argv: str) -> Run:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", *argv],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    run = Run(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            run.lines.append(line)

    def track() -> None:  # processes started and gone between two looks are missed; those that stay are not
        while not run.done:
            run.seen_pids |= _descendants(proc.pid)
            time.sleep(0.25)

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=track, daemon=True).start()
    return run


def _requests_counted(out: Path) -> Callable[[], bool]:
    """Locust's per-second history (--csv-full-history) shows requests done: load is steady, not a guess."""

    def counted() -> bool:
        history = out / "stats_stats_history.csv"
        if not history.exists():
            return False
        rows = history.read_text().splitlines()
        header = rows[0].split(",") if rows else []
        if "Total Request Count" not in header:
            return False
        col = header.index("Total Request Count")
        return any(int(r.split(",")[col] or 0) > 0 for r in rows[1:] if r.count(",") >= col)

    return counted


def _signal_and_check(run: Run, sig: int, *, codes: tuple[int, ...]) -> str:
    run.seen_pids |= _descendants(run.proc.pid)
    sent = time.monotonic()
    run.proc.send_signal(sig)
    try:
        code = run.proc.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        pytest.fail(f"still running {STOP_WITHIN_S:g} s after {sig!r}:\n{run.text()[-3000:]}")
    took = time.monotonic() - sent
    run.done = True
    time.sleep(0.3)  # the reader thread drains the pipe's last lines
    out = run.text()
    assert code in codes, (code, out[-3000:])
    assert "Traceback" not in out, out[-3000:]
    end = time.monotonic() + 10  # a killed group may take a moment to be reaped
    left = set(_children()) & run.seen_pids
    while left and time.monotonic() < end:
        time.sleep(0.2)
        left = set(_children()) & run.seen_pids
    assert not left, f"left running after loadgen exited: {left}"
    if m := re.search(r"logs: (\S+)/logs", out):  # the embedded server's data dir (~450 MB) goes too
        assert not Path(m.group(1)).exists() or "kept in" in out
    print(f"stopped {took:.1f} s after the signal")
    return out


def _requests(path: Path) -> int:
    return int(json.loads(path.read_text())["totals"]["requests"])


def _report_args(out: Path) -> dict:
    """The figures Locust's own report shows (its page script reads them from ``window.templateArgs``)."""
    page = (out / "locust-report.html").read_text()
    m = re.search(r"window\.templateArgs = (\{.*\})\n", page)
    assert m, "no templateArgs in locust-report.html"
    return {"page": page, **json.loads(m.group(1))}


def _check_partial_report(out: Path) -> None:
    """A run cut short by a signal has its report.html too, saying so, with results.json's numbers; and Locust's own
    report (locust-report.html), marked partial."""
    results = json.loads((out / "results.json").read_text())
    page = check_same_figures(out)
    assert "partial: stopped early" in page.title and "Stopped early: stopped by a signal" in page.banner
    report = _report_args(out)
    assert "partial: stopped by a signal" in report["profile"]  # the report's header field for a run label
    assert 'id="loadgen-partial"' in report["page"] and "<title>Locust (partial:" in report["page"]
    assert "partial" in results["run"]
    total = next(r for r in report["requests_statistics"] if r["name"] == "Aggregated")
    assert total["num_requests"] == results["totals"]["requests"]  # one run, one set of numbers
    assert total["num_failures"] == results["totals"]["failures"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_while_the_embedded_server_starts(tmp_path: Path, sig: int) -> None:
    run = _start("run", *SMALL, "--out", str(tmp_path / "out"))
    run.wait_line(r"starting embedded Milvus")
    _signal_and_check(run, sig, codes=(130,))


def test_while_the_collection_fills(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    run = _start("run", *_on(milvus, "lg_sig_fill"), "--rows", "400000", "--dim", "8", "--out", str(tmp_path / "out"))
    run.wait_line(r"filling lg_sig_fill:\s+\d+%")
    out = _signal_and_check(run, signal.SIGINT, codes=(130,))
    assert "interrupted while preparing the collection" in out
    client.drop_collection("lg_sig_fill")  # kept, marked as loadgen's, for a later run to fill on


def test_during_ramp_up(milvus: ServerInfo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _start("run", *_on(milvus, "lg_sig_ramp"), *SMALL, "-u", "60", "-r", "4", "-t", "2m", "--out", str(out))
    run.wait_line(r"Ramping to 60 users")
    _signal_and_check(run, signal.SIGINT, codes=(0,))
    assert (tmp_path / "out" / "results.json").exists()
    _check_partial_report(tmp_path / "out")


@pytest.mark.parametrize(
    ("case", "argv", "sig"),
    [
        ("closed", [], signal.SIGINT),
        ("closed, SIGTERM", [], signal.SIGTERM),
        ("open model with a stream", ["--arrival-rate", "40", "--stream-rates", "insert=5"], signal.SIGINT),
        ("2 worker processes", ["--processes", "2"], signal.SIGINT),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_during_steady_load(milvus: ServerInfo, tmp_path: Path, case: str, argv: list[str], sig: int) -> None:
    out_dir = tmp_path / "out"
    run = _start("run", *_on(milvus, "lg_sig_steady"), *SMALL, "-u", "4", "-t", "2m", *argv, "--out", str(out_dir))
    # a master whose workers report late (a busy machine) says "Spawning is complete ..." instead
    run.wait_line(r"All users spawned|Spawning is complete")
    run.wait_for(_requests_counted(out_dir), 60, "requests in the stats history")
    out = _signal_and_check(run, sig, codes=(0,))  # 0: nothing failed, the users were stopped before the cleanup
    assert "report.html (partial: stopped early)" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["totals"]["requests"] > 0
    assert results["totals"]["failures"] == 0, results["failures"]
    _check_partial_report(out_dir)


def test_between_sweep_levels(milvus: ServerInfo, tmp_path: Path) -> None:
    out_dir = tmp_path / "sweep"
    run = _start("sweep", *_on(milvus, "lg_sig_sweep"), *SMALL, "--users", "1,2,3", "-t", "3s", "--out", str(out_dir))
    run.wait_line(r"results: .*users-1/results.json")  # level 1 done, level 2 about to start
    # 0: level 2's Locust was stopped and the sweep ended there; 130: the signal came between two Locust runs
    _signal_and_check(run, signal.SIGINT, codes=(0, 130))
    assert _requests(out_dir / "users-1" / "results.json") > 0
    first = _report_args(out_dir / "users-1")  # a level that ran its whole time: a report, not marked partial
    assert not first["profile"] and "loadgen-partial" not in first["page"]
    assert not (out_dir / "users-3").exists()  # the sweep stopped


def test_during_shutdown_and_drop(milvus: ServerInfo, tmp_path: Path) -> None:
    run = _start("run", *_on(milvus, "lg_sig_shutdown"), *SMALL, "-u", "2", "-t", "3s", "--out", str(tmp_path / "out"))
    run.wait_line(r"limit reached|Shutting down")
    # 0: Locust was still shutting down (the signal is ignored by then); 130: it was done, loadgen was not
    _signal_and_check(run, signal.SIGINT, codes=(0, 130))
    assert _requests(tmp_path / "out" / "results.json") > 0


def test_loadgen_ui_with_a_running_swarm(milvus: ServerInfo, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    run = _start("ui", *_on(milvus, "lg_sig_ui"), *SMALL, "--web-port", str(port), "--out", str(tmp_path / "ui"))
    run.wait_line(r"web UI at http")
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(base + "/", timeout=2).read()
        except OSError:
            return False
        return True

    run.wait_for(answers, 60, "web UI")
    form = "user_count=2&spawn_rate=2&user_classes=PymilvusUser&user_classes=AsyncPymilvusUser"
    urllib.request.urlopen(urllib.request.Request(base + "/swarm", data=form.encode(), method="POST"), timeout=30)

    def requests_done() -> bool:
        stats = json.loads(urllib.request.urlopen(base + "/stats/requests", timeout=5).read())
        return any(row["name"] == "Aggregated" and row["num_requests"] > 0 for row in stats["stats"])

    run.wait_for(requests_done, 60, "requests in the UI's stats")
    _signal_and_check(run, signal.SIGINT, codes=(0, 1))
