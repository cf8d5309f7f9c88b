"""One driver's closed model over the fake store (``loadgen.users.drivers``): argv ``DRIVER FLAVOUR USERS``
(``thread sync 6``, ``loop async 6``, ``greenlet sync 20`` ...) in a local runner, search only, paced
``constant(0.1)``; each call 50 ms, every fifth one failing, the hub taking posted work once a second (so a stop finds
some not taken yet). The stop comes while a call is out, with a stop timeout as ``loadgen run`` sets one. Prints
one JSON line: the driver each user ran on, the threads the calls ran in, the calls made and failed (counted in the
store), the rows and failures reported, the drivers results.json's run section records, and the user threads still
alive after the stop."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import asyncio
import json
import sys
import threading
import time

import gevent
from fake_runner import start
from locust import constant

from loadgen.clients import fake
from loadgen.locust import hooks
from loadgen.users import drivers
from loadgen.users.fake import AsyncFakeUser, FakeUser

driver, flavour, users_n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
calls = {"made": 0, "out": 0, "cancelled": 0, "failed": 0}
threads: set[int] = set()


def _begin() -> bool:
    with lock:
        calls["made"] += 1
        calls["out"] += 1
        threads.add(threading.get_ident())
        return calls["made"] % 5 == 0


def _failed() -> None:
    with lock:
        calls["failed"] += 1


def _end() -> None:
    with lock:
        calls["out"] -= 1


def _counted(k: int) -> list[int]:
    fail = _begin()
    try:
        time.sleep(0.05)  # gevent's sleep: in a user's thread, on a hub of that thread's own
        if fail:
            _failed()
            raise fake.FakeError("every fifth call fails")
        return list(range(k))
    finally:
        _end()


async def _acounted(k: int) -> list[int]:
    fail = _begin()
    try:
        await asyncio.sleep(0.05)
        if fail:
            _failed()
            raise fake.FakeError("every fifth call fails")
        return list(range(k))
    except asyncio.CancelledError:
        # a call cancelled, never answered, is no result (and no row). Locust kills a user it found waiting between
        # two tasks, and the kill can land just after that user began its next call: the greenlet driver waits for
        # that call's answer and reports it (``bridge.run(..., answer_when_killed=True)``), so none is cancelled
        with lock:
            calls["cancelled"] += 1
        raise
    finally:
        _end()


fake._hits, fake._ahits = _counted, _acounted  # the operations look them up at each call
drivers.BATCH_S = 1.0


class Paced(AsyncFakeUser if flavour == "async" else FakeUser):  # type: ignore[misc, valid-type]
    wait_time = constant(0.1)  # the closed model's pacing, between two tasks, whatever the driver


argv = ["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8", "--driver", driver]
began = time.perf_counter()
runner, users = start([Paced], argv, users_n)
# as `loadgen run` passes (--stop-timeout), with room for a loaded machine: a task in progress finishes (each takes
# 50 ms), none is cut by the timeout (a cut one's row would be lost: seen with 5 s beside four other test suites)
runner.environment.stop_timeout = 30.0
gevent.sleep(1.5)
out: dict[str, object] = {"drivers": sorted({u.driver.name for u in users})}
deadline = time.perf_counter() + 2.0
while calls["out"] == 0 and time.perf_counter() < deadline:
    gevent.sleep(0.002)
out["in_flight_at_stop"] = calls["out"]
out["ran_s"] = time.perf_counter() - began
runner.stop()  # every user's stop: the calls in flight answer and are reported before it returns
deadline = time.perf_counter() + 2.0  # a thread ends a moment after it told the hub so
while (left := [t.name for t in threading.enumerate() if "loadgen-user" in t.name]) and time.perf_counter() < deadline:
    gevent.sleep(0.01)
name = "asearch" if flavour == "async" else "search"
stats = runner.stats.entries.get((name, "fake-async" if flavour == "async" else "fake"))
assert hooks.state.drivers is not None
out.update(
    calls=calls["made"] - calls["cancelled"], cancelled=calls["cancelled"], failed=calls["failed"],
    rows=stats.num_requests if stats else 0,
    failures=stats.num_failures if stats else 0, hub_thread=threading.main_thread().ident in threads,
    call_threads=len(threads), user_threads_left=left, recorded=hooks.state.drivers.entries(),
)  # fmt: skip
runner.quit()
print(json.dumps(out))
