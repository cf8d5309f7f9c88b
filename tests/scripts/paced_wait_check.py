"""Open-model users wait in Locust's wait, not in a task: 20 fake-store users at 40 calls/s in all, whose class asks
for ``constant(0)`` pacing (a closed-model setting), in a local runner. Counts how often each user's own task ran and
the users' Locust states while their schedules send. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import json
from collections import Counter

import gevent
from fake_runner import start
from locust import constant

from loadgen.users import base
from loadgen.users.fake import FakeUser

runs: Counter[int] = Counter()
paced = base._paced


def counted(user: base.StoreUser) -> None:
    runs[id(user)] += 1
    paced(user)


base._paced = counted  # read when each user is made


class BusyPacing(FakeUser):
    wait_time = constant(0)  # would spin, if the open model's user still ran tasks back to back


argv = ["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8", "--arrival-rate", "40"]
runner, _ = start([BusyPacing], argv, 20)
gevent.sleep(2.5)
users = [g.args[0] for g in runner.user_greenlets]
out = {
    "users": len(users),
    "task_runs": sorted(runs[id(u)] for u in users),
    "states": sorted({u._state for u in users}),
    "requests": runner.stats.total.num_requests,
}
runner.stop()
out["users_after_stop"] = len(runner.user_greenlets)
runner.quit()
print(json.dumps(out))
