"""Users freeze what they hold once connected (``runtime.freeze_heap``) and a test stop thaws it: 5 sync and 5 async
users of the fake store in a local runner, as a run has them. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime

# isort: split
import argparse
import gc
import json
import time

import gevent
from locust import events
from locust.env import Environment

import loadgen.locust.hooks  # noqa: F401  - our listeners, as in a locustfile (a test stop thaws the heap)
from loadgen.config.settings import add_options
from loadgen.users.fake import AsyncFakeUser, FakeUser

parser = argparse.ArgumentParser()
add_options(parser, locust=False)
ns = parser.parse_args(["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8"])
ns.headless, ns.autostart, ns.users = True, False, 10
env = Environment(user_classes=[FakeUser, AsyncFakeUser], events=events, host="http://127.0.0.1:9", parsed_options=ns)
runner = env.create_local_runner()
events.init.fire(environment=env, runner=runner, web_ui=None)
out: dict[str, object] = {"frozen_before": gc.get_freeze_count()}
runner.start(10, spawn_rate=100, wait=False)
deadline = time.perf_counter() + 30
while time.perf_counter() < deadline:
    users = [g.args[0] for g in runner.user_greenlets]
    if len(users) == 10 and all(u.store is not None for u in users):
        break
    gevent.sleep(0.1)
gevent.sleep(0.5)
out["frozen_running"] = gc.get_freeze_count()
out["requests_running"] = runner.stats.total.num_requests
runner.stop()
out["frozen_after_stop"] = gc.get_freeze_count()
runner.quit()
print(json.dumps(out))
