"""A locustfile with no Milvus in it: each user reports a request every 50 ms and takes 1.5 s to stop (on_stop), so
a worker's final stats report reaches the master well after Locust's master would stop listening (0.5 s after it
sent "quit"). Each process writes how many requests its users reported to $SLOW_STOP_DIR/<pid>.json."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import json
import os
import time
from pathlib import Path

import gevent
from locust import User, constant, events, task

import loadgen.locust.hooks  # noqa: F401  - loadgen's listeners: results.json, the master's quit

FIRED = {"n": 0}


class SlowStopUser(User):
    wait_time = constant(0.05)

    @task
    def tick(self) -> None:
        FIRED["n"] += 1
        events.request.fire(request_type="fake", name="tick", response_time=1.0, response_length=0, exception=None,
                            context={})  # fmt: skip

    def on_stop(self) -> None:
        gevent.sleep(1.5)


@events.quitting.add_listener
def _count(environment: object, **_: object) -> None:
    if FIRED["n"]:
        out = Path(os.environ["SLOW_STOP_DIR"]) / f"{os.getpid()}.json"
        out.write_text(json.dumps({"fired": FIRED["n"], "at": time.time()}))
