"""Drivers (``loadgen.users.drivers``): the same checks once per driver, on the fake store (no server), in
subprocesses (importing the users here would patch this process): every call is a row, its failures failures, the
one in flight at a stop included, the class's pacing holds, nothing of a driver is left after a stop, and the driver
that ran is what results.json records. And ``--driver auto``: decided without the number of users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, run_script

from loadgen.milvus.server import ServerInfo

CASES = [  # driver, flavour, users; where the calls run
    ("greenlet", "sync", 6),
    ("greenlet", "async", 6),
    ("thread", "sync", 6),
    ("loop", "async", 6),
]


def check(driver: str, flavour: str, users: int, runs_on: str = "") -> dict[str, Any]:
    out: dict[str, Any] = run_script("driver_check.py", driver, flavour, str(users), timeout=60)
    driver = runs_on or driver
    assert out["drivers"] == [driver], out
    assert out["in_flight_at_stop"] > 0, out
    assert out["rows"] == out["calls"] > 0 and out["failures"] == out["failed"] > 0, out
    # constant(0.1) between two tasks: at least 0.15 s apart with the 50 ms call (without it, 0.05 s: twice this)
    assert out["calls"] <= users * (out["ran_s"] / 0.1 + 1), out
    assert out["user_threads_left"] == [], out
    [recorded] = out["recorded"]
    assert recorded["driver"] == driver and recorded["users"] == users and recorded["process"] == "local", out
    return out


@pytest.mark.parametrize(("driver", "flavour", "users"), CASES, ids=[f"{d}-{f}" for d, f, _ in CASES])
def test_each_driver_reports_every_call_through_a_stop_with_the_class_pacing(
    driver: str, flavour: str, users: int
) -> None:
    out = check(driver, flavour, users)
    if driver == "thread":  # each user's calls in its own OS thread, none on the hub
        assert out["call_threads"] == users and out["hub_thread"] is False
    elif flavour == "sync":  # the greenlet driver: every call on the hub
        assert out["hub_thread"] is True and out["call_threads"] == 1
    else:  # async calls are awaited on the loop's one thread, whichever side waits for them
        assert out["hub_thread"] is False and out["call_threads"] == 1


def test_auto_picks_the_same_driver_for_16_and_17_users() -> None:
    # the driver used to change with the number of users (threads up to 16 sync users, greenlets beyond)
    check("auto", "sync", 16, runs_on="thread")
    check("auto", "sync", 17, runs_on="thread")


def test_a_driver_a_class_cannot_use_is_one_line() -> None:
    out = run_script("driver_refusal.py")
    assert out == {
        "thread-async": "--driver thread: AsyncFakeUser cannot run on it: an async user's calls are awaited on the "
        "asyncio loop, not in a thread (--driver auto picks one)",
        "loop-sync": "--driver loop: FakeUser cannot run on it: a sync user's calls would block the asyncio loop "
        "every async user shares (--driver auto picks one)",
        "thread-writes": "--driver thread: FakeUser cannot run on it: it sends writes or follow-up calls (their "
        "bookkeeping is the hub's) (--driver auto picks one)",
        "loop-open-writes": "--driver loop: AsyncFakeUser cannot run on it: it sends writes or follow-up calls "
        "(their bookkeeping is the hub's) (--driver auto picks one)",
        "unknown": "--driver 'fibre': choose auto or one of loop, thread, greenlet",
        "auto": {"FakeUser": "thread", "AsyncFakeUser": "loop"},
        "auto-open": {"FakeUser": "greenlet", "AsyncFakeUser": "loop"},
        "auto-writes": {"FakeUser": "greenlet", "AsyncFakeUser": "greenlet"},
        "auto-iterations": {"FakeUser": "greenlet", "AsyncFakeUser": "greenlet"},
    }


def _level(users: int, driver: str) -> dict[str, Any]:
    row = {"type": "pymilvus", "name": "search", "requests": 100, "failures": 0, "rps": 50.0 + users, "avg_ms": 2.0,
           "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": 4.0}  # fmt: skip
    entry = {"process": "local", "class": "PymilvusUser", "type": "pymilvus", "driver": driver, "users": users}
    return {"format": "milvus-loadgen/results/v2", "run": {"users": users, "level": {"users": users},
            "drivers": [entry]}, "settings": {}, "requests": [row], "totals": {}, "failures": []}  # fmt: skip


def test_the_report_and_the_summary_say_which_driver_made_each_figure() -> None:
    from loadgen.report.analysis import analyse
    from loadgen.report.document import sections
    from loadgen.report.load import Run
    from loadgen.stats.drivers import line

    runs = [Run("sweep", _level(n, d)) for n, d in ((1, "thread"), (16, "thread"), (17, "greenlet"), (20, "thread"))]
    [curve] = analyse(runs, slo_p99_ms=None, max_error_rate=0.01)["curves"]
    assert [(lv["driver"], lv["driver_differs"]) for lv in curve["levels"]] == [
        ("thread", False), ("thread", False), ("greenlet", True), ("thread", False)]  # fmt: skip
    doc = {"analysis": analyse(runs, slo_p99_ms=None, max_error_rate=0.01), "dataset": {}, "inputs": ["sweep"],
           "runs": 4}  # fmt: skip
    [_, levels] = next(s for s in sections(doc) if s.heading == "Client layer: pymilvus").tables
    assert [row[-1] for row in levels[1]] == ["thread", "thread", "greenlet (differs from the other levels)", "thread"]
    same = analyse([Run("s", _level(n, "thread")) for n in (16, 17)], slo_p99_ms=None, max_error_rate=0.01)
    assert not any(lv["driver_differs"] for lv in same["curves"][0]["levels"])
    two = [*_level(4, "thread")["run"]["drivers"], {**_level(4, "thread")["run"]["drivers"][0], "process": "w2"}]
    assert line(two) == "drivers: PymilvusUser thread (8 users in 2 processes)"


@pytest.mark.milvus
@pytest.mark.slow
def test_a_sweep_and_a_capacity_search_across_16_and_17_sync_users_record_one_driver(
    milvus: ServerInfo, tmp_path: Path
) -> None:
    common = ["--host", milvus.uri, "--rows", "500", "--dim", "16", "--weights", "search=1", "--collection",
              "lg_drivers", "-t", "2s", "PymilvusUser"]  # fmt: skip
    swept = run_cli("sweep", "--users", "16,17", *common, "--out", str(tmp_path / "sweep"), timeout=400)
    assert swept.returncode == 0, swept.stderr[-3000:]
    levels = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["levels"]
    assert [[(e["class"], e["driver"], e["users"]) for e in lvl["run"]["drivers"]] for lvl in levels] == [
        [("PymilvusUser", "thread", 16)], [("PymilvusUser", "thread", 17)]]  # fmt: skip
    assert "drivers: PymilvusUser thread (16 users)" in swept.stdout
    capacity = run_cli(
        "capacity", *common, "-u", "17", "--slo-p99-ms", "1000", "--start-rate", "20", "--max-rate", "40",
        "--min-samples", "20", "--out", str(tmp_path / "cap"), timeout=400,
    )  # fmt: skip
    assert capacity.returncode == 0, capacity.stderr[-3000:]
    steps = json.loads((tmp_path / "cap" / "sweep.json").read_text())["levels"]
    assert len(steps) == 2 and {e["driver"] for s in steps for e in s["run"]["drivers"]} == {"greenlet"}
    report = run_cli("report", str(tmp_path / "sweep"), str(tmp_path / "cap"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "differs" not in (tmp_path / "report" / "report.md").read_text()
