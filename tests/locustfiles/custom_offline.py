"""A custom user whose tasks touch no store: what the fast tier runs under real Locust processes (no Milvus)."""

import asyncio

import gevent
from locust import task

from loadgen import VectorStoreUser


class Offline(VectorStoreUser):
    layer = None  # nothing to prepare

    async def on_start(self) -> None:
        self.ready = await asyncio.sleep(0, result=True)

    @task(3)
    def sync_flow(self) -> None:
        with self.flow("sync") as steps:
            gevent.sleep(0.002)
            steps.mark("first")
            gevent.sleep(0.003)
            steps.mark("second")

    @task(3)
    async def async_flow(self) -> None:
        assert self.ready
        async with self.flow("async") as steps:
            await asyncio.sleep(0.002)
            steps.mark("first")
            await asyncio.to_thread(sum, range(1000))  # the loop's executor works (LangChain uses it)
            steps.mark("second")

    @task
    async def crash(self) -> None:
        raise RuntimeError("boom in user code")
