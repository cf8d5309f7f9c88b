"""A locustfile with no Milvus in it: one user that keeps the process busy, one that idles (issue 16's generator
saturation test). loadgen's hooks are imported so the generator probe runs as in any loadgen run."""

import loadgen.runtime  # first: the gevent/asyncio policy

# isort: split
import time

from locust import User, constant, task

import loadgen.locust.hooks  # noqa: F401  - the listeners, the generator probe among them
from loadgen.runtime import bridge

SPIN_S = 0.2  # each task holds the hub this long: the probe's sleeps overshoot by up to this much


class BusyUser(User):
    wait_time = constant(0)

    @task
    def spin(self) -> None:
        end = time.perf_counter() + SPIN_S
        while time.perf_counter() < end:
            pass


class IdleUser(User):
    wait_time = constant(0.2)

    @task
    def rest(self) -> None:
        async def nothing() -> None:  # starts the asyncio loop, so its probe runs too
            return None

        bridge.run(nothing(), timeout=5)
