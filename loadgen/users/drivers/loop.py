"""The ``loop`` driver: an async user's calls made from the asyncio loop itself, with no thread hand-off per call.

Otherwise each call of an async user crosses threads twice: its greenlet hands the call to the loop
(``runtime.bridge``) and sleeps until the loop wakes the hub with the answer; in the open model a schedule greenlet
also wakes at each slot and spawns a send greenlet: hundreds of thread wake-ups a second, each paid in the
generator's CPU and in the latency it reports (bench/COST.md sections 4-7).

Here a user's open-model schedules, or in the closed model its task loop (a task by weight, the call or fan-out, the
class's ``wait_time``), are asyncio tasks on the process's loop; an open-model send is a task of its own there, a
closed-model call runs in its user's task (one task per user, not one per call). What must happen on the hub (the
open-model counts, each call's outcome and row) is posted to the process's ``Outbox``: one wake-up of the hub per
batch. Nothing of the hub's is touched from the loop's thread; the Locust user itself waits in Locust's wait, where a
stop ends it at once (its stop lets the calls already made answer, and reports them).

It drives async users whose every operation is a single read (inputs, call and outcome touch nothing but the user's
own store), without ``--iterations`` (counted by Locust's own task loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
from loadgen.errors import CallTimeout
from loadgen.runtime import bridge
from loadgen.stats.timing import ameasure, ameasure_many
from loadgen.users.drivers import Closed, Driver, Use, this_outbox
from loadgen.users.pipeline import Caller
from loadgen.users.schedule import Plan, Schedule

# a closed-model user with no wait between calls yields to the loop's other tasks at least this often, for a store
# whose calls answer at once (a real call waits on the loop for its answer anyway: a trip round the loop after
# each one cost an async user CPU on the loop's thread per call, bench/COST.md section 11)
YIELD_EVERY = 16


class LoopDriver(Driver):
    name = "loop"
    auto_order = 10
    runs_tasks = True

    @classmethod
    def refuses(cls, use: Use) -> str:
        if not use.use_async:
            return "a sync user's calls would block the asyncio loop every async user shares"
        if not use.off_hub:
            return "its layer's calls run on the hub only"
        if not use.reads_only:
            return "it sends writes or follow-up calls (their bookkeeping is the hub's)"
        if use.iterations:
            return "--iterations is counted by Locust's own task loop"
        return ""

    def __init__(self, user: Caller) -> None:
        self.outbox = this_outbox()  # made on the hub's thread (here: the user's construction)
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Task[None]] = set()  # open-model sends in flight
        self._busy: set[asyncio.Task[None]] = set()  # closed-model loops in a call (a stop waits for these)
        self._halting = False
        self._closed_started = False
        super().__init__(user)

    def deliver(self, fn: Callable[..., None], *args: Any) -> None:
        self.outbox.post(self.user, fn, *args)

    def start(self, plans: list[Plan], closed: Closed | None) -> None:
        if closed is not None and self._closed_started:
            closed = None  # Locust runs the user's one task again after each wait: the loop runs already
        if closed is None and not plans:
            return
        self._closed_started = self._closed_started or closed is not None
        loop, s = bridge.loop, self.user.settings

        def begin() -> None:  # on the loop's thread
            schedules = [Schedule(p, process=s.arrival_process, limit=s.max_in_flight, rng=self.user.rng,
                                  deliver=self.deliver) for p in plans]  # fmt: skip
            runs = [self._schedule(schedule, plan) for schedule, plan in zip(schedules, plans, strict=True)]
            if closed is not None:
                runs.append(self._closed(*closed))
            for run in runs:
                task = loop.create_task(run)
                task.add_done_callback(self._crashed)
                self._tasks.append(task)

        loop.call_soon_threadsafe(begin)

    def stop(self, timeout: float) -> None:
        async def halt() -> None:  # on the loop: every task here is at an await, in a call (busy) or not
            self._halting = True
            for task in self._tasks:
                if task not in self._busy:
                    task.cancel()
            if waiting := [*self._calls, *self._busy]:  # a busy closed loop ends after its call (_halting)
                _, pending = await asyncio.wait(waiting, timeout=timeout)
                for task in pending:
                    task.cancel()

        with contextlib.suppress(CallTimeout):  # the loop is stopped (quitting) or stuck: nothing more answers
            bridge.run(halt(), timeout + 1.0)
        self.outbox.flush()

    def _crashed(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.error(exc)

    async def _schedule(self, schedule: Schedule, plan: Plan) -> None:
        """The plan's sends, each a task of its own on the loop."""
        loop = asyncio.get_running_loop()
        while True:
            for intended in schedule.due(self._calls.__len__):
                task = loop.create_task(self._task(plan.pick(), intended, plan.kind))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
                task.add_done_callback(self._crashed)
            await asyncio.sleep(schedule.wait())

    async def _closed(self, tasks: list[str], wait: Callable[[], float]) -> None:
        """Locust's task loop for one user, on the loop: a task by weight, its call (or fan-out), the user's wait.
        The call runs in this task (no task and no shield per call: at one call in flight each cost a trip round
        the loop between two calls); while it does, the task is ``busy``: a stop cancels it only between calls,
        and otherwise lets the call answer, then the loop ends. A wait of 0 (``constant(0)``) makes no trip round
        the loop either: a call already waits there for its answer; only every ``YIELD_EVERY``-th does, for a
        store that answers without waiting."""
        rng, me = self.user.rng, asyncio.current_task()
        assert me is not None
        calls = 0
        while not self._halting:
            name = rng.choice(tasks)
            self._busy.add(me)
            try:
                await (self._fanout() if name == "fanout" else self._task(name, None, ""))
            except Exception as exc:  # like Locust: the user's error is reported, the user goes on
                self.error(exc)
            finally:
                self._busy.discard(me)
            calls += 1
            if not self._halting and ((pause := wait()) > 0 or calls % YIELD_EVERY == 0):
                await asyncio.sleep(pause)

    async def _task(self, name: str, intended: float | None, kind: str) -> None:
        """One task on the loop: the pipeline's, with the call awaited right here."""
        pipeline, store = self.pipeline, self.user.store
        call = pipeline.begin(name, intended, kind)
        while call is not None:
            if call.pause:
                await asyncio.sleep(call.pause)
            make = functools.partial(call.op.async_call, store, *call.inputs)
            call = pipeline.end(call, await ameasure(make, pipeline.timeout))

    async def _fanout(self) -> None:
        all_inputs, makers = self.pipeline.fanout()
        samples, batch_ms = await ameasure_many(makers, self.pipeline.timeout)
        self.pipeline.fanout_end(all_inputs, samples, batch_ms)
