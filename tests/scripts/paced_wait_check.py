"""Open-model users wait in Locust's wait, not in a task: 20 fake-store users at 40 calls/s in all, whose class asks
for ``constant(0)`` pacing (a closed-model setting), in a local runner. Counts how often each user's own task ran and
the users' Locust states while their schedules send. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime

# isort: split
import argparse
import json
import time
from collections import Counter

import gevent
from locust import constant, events
from locust.env import Environment

import loadgen.locust.hooks  # noqa: F401  - our listeners, as in a locustfile
from loadgen.config.settings import add_options
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


parser = argparse.ArgumentParser()
add_options(parser, locust=False)
ns = parser.parse_args(["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8", "--arrival-rate", "40"])
ns.headless, ns.autostart, ns.users = True, False, 20
env = Environment(user_classes=[BusyPacing], events=events, host="http://127.0.0.1:9", parsed_options=ns)
runner = env.create_local_runner()
events.init.fire(environment=env, runner=runner, web_ui=None)
runner.start(20, spawn_rate=100, wait=False)
deadline = time.perf_counter() + 30
while time.perf_counter() < deadline:
    users = [g.args[0] for g in runner.user_greenlets]
    if len(users) == 20 and all(u.store is not None for u in users):
        break
    gevent.sleep(0.1)
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
