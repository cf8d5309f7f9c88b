"""Drivers (``loadgen.users.drivers``): the same checks once per driver, on the fake store (no server), in
subprocesses (importing the users here would patch this process): every call is a row, its failures failures, the
one in flight at a stop included, the class's pacing holds, nothing of a driver is left after a stop, and the driver
that ran is what results.json records. And ``--driver auto``: decided without the number of users."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import run_script

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
