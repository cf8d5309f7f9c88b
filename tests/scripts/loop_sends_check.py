"""The async users' open model on the asyncio loop (the ``loop`` driver): 12 fake-store users (6 async, 6
sync) at 100 calls/s in all, each call 50 ms (so a stop finds calls in flight), the hub taking the loop's posts once
a second (so a stop finds some not taken yet), in a local runner; with ``--stream-rates insert=5`` the async users
have a write (they keep the greenlet schedule); with ``--closed`` the closed model (search and a fan-out of 4, the
async class paced at 0.1 s, its calls 0.55 s). The stop comes while an async call is out; ``async_calls`` counts the
calls made, to hold against the rows. Prints one JSON line: which path each user took, the open-model
counts and the rows reported."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import asyncio
import json
import sys
import time

import gevent
from fake_runner import start
from locust import constant

from loadgen.clients import fake
from loadgen.locust import hooks
from loadgen.users import drivers
from loadgen.users.fake import AsyncFakeUser, FakeUser


class PacedAsync(AsyncFakeUser):
    wait_time = constant(0.1)  # the closed model's pacing: the loop applies it between two tasks


fake.DELAY_S = 0.05
calls = [0, 0]  # async fake calls begun, and in flight (searches and fan-outs' searches; on the loop's thread)
_ahits = fake._ahits


async def _counted(k: int) -> list[int]:
    calls[0] += 1
    calls[1] += 1
    try:
        if closed:  # long calls: the users' stops (one after another) still find them out
            await asyncio.sleep(0.5)
        return await _ahits(k)
    finally:
        calls[1] -= 1


fake._ahits = _counted  # the operations look it up at each call
drivers.BATCH_S = 1.0  # the hub takes a batch a second: what a stop leaves unflushed would be missing below
closed = sys.argv[1:] == ["--closed"]
extra = [] if closed else sys.argv[1:]  # e.g. --stream-rates insert=5
model = ["--weights", "search=2,fanout=1", "--fanout", "4"] if closed else ["--arrival-rate", "100"]
argv = ["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8", *model, *extra]
began = time.perf_counter()
runner, users = start([PacedAsync if closed else AsyncFakeUser, FakeUser], argv, 12)
gevent.sleep(2.5)
in_greenlets = [u for u in users if u.driver.name == "greenlet"]
out = {
    "async_on_loop": sorted(u.driver.name == "loop" for u in users if u.use_async),
    "async_greenlet_schedules": sum(len(u.driver.sends.schedules) for u in in_greenlets if u.use_async),
    "sync_on_loop": sorted(u.driver.name == "loop" for u in users if not u.use_async),
}
deadline = time.perf_counter() + 2.0
while calls[1] == 0 and time.perf_counter() < deadline:  # stop while a call is out (closed model: in a user's task)
    gevent.sleep(0.002)
out["in_flight_at_stop"] = calls[1]
out["ran_s"] = time.perf_counter() - began
runner.stop()  # every user's stop: calls in flight answer and are reported before it returns
assert hooks.state.arrivals is not None
counts = {k: c.to_dict() for k, c in hooks.state.arrivals.counts.items()}
rows = {}
for (name, kind), entry in runner.stats.entries.items():
    rows[f"{kind} {name}"] = entry.num_requests
out.update(counts=counts, rows=rows, failures=runner.stats.total.num_failures, async_calls=calls[0])
runner.quit()
print(json.dumps(out))
