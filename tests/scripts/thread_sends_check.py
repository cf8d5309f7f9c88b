"""The sync users' closed model in threads of their own (``loadgen.users.thread_sends``): N fake-store sync users
(argv[1]) in a local runner, search only, paced ``constant(0.1)``; each call 50 ms, every fifth one failing, the
hub taking the posted rows once a second (so a stop finds some not taken yet). The stop comes while a call is out.
Prints one JSON line: which path each user took, the threads the calls ran in, the calls made and failed (counted
in the store) and the rows and failures reported, and the user threads still alive after the stop."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import json
import sys
import threading
import time

import gevent
from fake_runner import start
from locust import constant

from loadgen.clients import fake
from loadgen.users import loop_sends
from loadgen.users.fake import FakeUser


class PacedSync(FakeUser):
    wait_time = constant(0.1)  # the closed model's pacing: the user's thread applies it between two tasks


lock = threading.Lock()
calls = {"made": 0, "out": 0}
threads: set[int] = set()
_hits = fake._hits


def _counted(k: int) -> list[int]:
    with lock:
        calls["made"] += 1
        calls["out"] += 1
        threads.add(threading.get_ident())
        fail = calls["made"] % 5 == 0
    try:
        time.sleep(0.05)  # gevent's sleep: in a user's thread, on a hub of that thread's own
        if fail:
            raise fake.FakeError("every fifth call fails")
        return _hits(k)
    finally:
        with lock:
            calls["out"] -= 1


fake._hits = _counted  # the operations look it up at each call
loop_sends.BATCH_S = 1.0
users_n = int(sys.argv[1])
began = time.perf_counter()
runner, users = start([PacedSync], ["--weights", "search=1", "--rows", "100", "--dim", "8"], users_n)
gevent.sleep(1.5)
out: dict[str, object] = {"in_thread": sorted(u._thread_sends is not None for u in users)}
deadline = time.perf_counter() + 2.0
while calls["out"] == 0 and time.perf_counter() < deadline:
    gevent.sleep(0.002)
out["in_flight_at_stop"] = calls["out"]
out["ran_s"] = time.perf_counter() - began
runner.stop()  # every user's stop: the calls in flight answer and are reported before it returns
deadline = time.perf_counter() + 2.0  # a thread ends a moment after it told the hub so
while (left := [t.name for t in threading.enumerate() if "loadgen-user" in t.name]) and time.perf_counter() < deadline:
    gevent.sleep(0.01)
stats = runner.stats.entries.get(("search", "fake"))
out.update(
    calls=calls["made"], failed=calls["made"] // 5, rows=stats.num_requests if stats else 0,
    failures=stats.num_failures if stats else 0, hub_thread=threading.main_thread().ident in threads,
    call_threads=len(threads), user_threads_left=left,
)  # fmt: skip
runner.quit()
print(json.dumps(out))
