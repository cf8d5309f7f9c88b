"""The ``thread`` driver: a sync user's closed-model task loop in an OS thread of its own.

In a greenlet, every sync grpc call crosses threads twice: grpc's gevent integration waits for the call's completion
on the hub's thread pool (``threadpool.apply``), and the pool wakes the hub with the answer. An app's sync code calls
``MilvusClient`` from an OS thread, where grpc waits in the calling thread itself; so does a bare pymilvus loop
(bench/COST.md sections 8-9 measure the difference).

Here the user's task loop (a task by weight, its call, the class's ``wait_time``) runs in a real thread (threads are
not patched, ``loadgen.runtime``). gevent's pool runs ``apply`` at once in a thread that is not its hub's, so grpc
waits right there. What the hub must do (the outcome, the row) is posted to the process's ``Outbox``: one wake-up of
the hub per batch. A stop lets the call in flight answer (within the user's timeout) and reports it, then the thread
ends.

It drives sync users whose every operation is a single read, in the closed model without streams (the open model's
sends overlap on one client) and without ``--iterations`` (counted by Locust's own task loop). One thread per user
whatever their number: a test of hundreds of sync users per process may spend less CPU per call on
``--driver greenlet`` (bench/COST.md section 12).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.event
from gevent._hub_local import get_hub_if_exists

from loadgen.stats.timing import measure
from loadgen.users.drivers import Closed, Driver, Use, this_outbox
from loadgen.users.pipeline import Caller
from loadgen.users.schedule import Plan


class ThreadDriver(Driver):
    name = "thread"
    auto_order = 20
    runs_tasks = True

    @classmethod
    def refuses(cls, use: Use) -> str:
        if use.use_async:
            return "an async user's calls are awaited on the asyncio loop, not in a thread"
        if not use.off_hub:
            return "its layer's calls run on the hub only"
        if not use.reads_only:
            return "it sends writes or follow-up calls (their bookkeeping is the hub's)"
        if use.open_model or use.streams:
            return "the open model and streams overlap several calls on one client"
        if use.iterations:
            return "--iterations is counted by Locust's own task loop"
        return ""

    def __init__(self, user: Caller) -> None:
        self.outbox = this_outbox()  # made on the hub's thread (here: the user's construction)
        self._halt = threading.Event()  # a real event: the thread waits on it between two tasks
        self._ended = gevent.event.Event()  # on the hub: the thread is done
        self._abandoned = False  # the stop gave up waiting: a late answer is not reported
        self.started = False
        super().__init__(user)

    def deliver(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._abandoned:
            self.outbox.post(self.user, fn, *args)

    def start(self, plans: list[Plan], closed: Closed | None) -> None:
        if closed is None or self.started:
            return
        self.started = True
        hub_loop = gevent.get_hub().loop
        tasks, wait = closed

        def run() -> None:
            try:
                self._loop(tasks, wait)
            except BaseException as exc:  # reported as the user's error, never lost with the thread
                self.error(exc)
            finally:
                hub = get_hub_if_exists()  # gevent's pool made one for this thread (its check of who calls it)
                if hub is not None:
                    hub.destroy(destroy_loop=True)
                hub_loop.run_callback_threadsafe(self._ended.set)

        threading.Thread(target=run, name=f"loadgen-user-{id(self.user):x}", daemon=True).start()

    def stop(self, timeout: float) -> None:
        self._halt.set()
        if self.started and not self._ended.wait(timeout):
            self._abandoned = True
        self.outbox.flush()

    def _loop(self, tasks: list[str], wait: Callable[[], float]) -> None:
        rng = self.user.rng
        while not self._halt.is_set():
            try:
                self._task(rng.choice(tasks))
            except Exception as exc:  # like Locust: the user's error is reported, the user goes on
                self.error(exc)
            pause = wait()
            if pause > 0 and self._halt.wait(pause):
                break

    def _task(self, name: str) -> None:
        """One task in this thread: the pipeline's, with the call waited for right here."""
        pipeline, store = self.pipeline, self.user.store
        call = pipeline.begin(name)
        while call is not None:
            if call.pause and self._halt.wait(call.pause):
                return
            call = pipeline.end(call, measure(call.op.call, store, *call.inputs))
