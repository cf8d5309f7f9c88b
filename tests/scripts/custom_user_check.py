"""Runs a VectorStoreUser's tasks (sync, async, failing, slow) in a process of its own (it monkey-patches), without
a server: the tasks touch no store. Prints the request rows they reported, as JSON, for test_custom_users.py."""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy (locust would patch threads)

# isort: split
import argparse
import asyncio
import json
import time

import gevent
from locust import task
from locust.env import Environment

from loadgen import VectorStoreUser
from loadgen.config.settings import add_options


class Custom(VectorStoreUser):
    layer = None  # nothing to prepare
    on_start_ran_on_loop = False

    async def on_start(self) -> None:
        await asyncio.sleep(0.001)
        self.on_start_ran_on_loop = asyncio.get_running_loop() is not None

    @task
    def sync_flow(self) -> None:
        with self.flow("sync") as steps:
            gevent.sleep(0.01)
            steps.mark("first")
            gevent.sleep(0.02)
            steps.mark("second")

    @task
    async def async_flow(self) -> None:
        async with self.flow("async") as steps:
            await asyncio.sleep(0.01)
            steps.mark("first")
            await asyncio.sleep(0.02)
            steps.mark("second")

    async def crash(self) -> None:
        raise RuntimeError("boom in user code")

    async def crash_in_flow(self) -> None:
        async with self.flow("crashing"):
            raise RuntimeError("boom in a flow")

    async def slow_flow(self) -> None:
        async with self.flow("slow"):
            await asyncio.sleep(30)

    async def slow(self) -> None:
        await asyncio.sleep(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    env = Environment(user_classes=[Custom], host="http://127.0.0.1:1", parsed_options=parser.parse_args([]))
    env.parsed_options.timeout = 0.5
    rows: list[dict] = []

    def on_request(request_type, name, response_time, exception=None, context=None, **_):
        error = repr(exception) if exception else None
        steps = (context or {}).get("steps")
        rows.append({"type": request_type, "name": name, "ms": response_time, "error": error, "steps": steps})

    env.events.request.add_listener(on_request)
    user = Custom(env)
    out: dict = {"wrapped_tasks": sorted({t.__name__ for t in user.tasks})}
    user.on_start()
    out["on_start_ran_on_loop"] = user.on_start_ran_on_loop
    user.run_task(Custom.sync_flow)
    user.run_task(Custom.async_flow)
    for fn in (Custom.crash, Custom.crash_in_flow, Custom.slow_flow, Custom.slow):
        start = time.perf_counter()
        try:
            user.run_task(fn)
            out[fn.__name__] = {"raised": None}
        except Exception as exc:
            out[fn.__name__] = {"raised": type(exc).__name__}
        out[fn.__name__]["elapsed"] = time.perf_counter() - start
    user.run_task(Custom.async_flow)  # the user goes on after its failures
    user.on_stop()
    gevent.sleep(0)
    out["rows"] = rows
    print(json.dumps(out))


main()
