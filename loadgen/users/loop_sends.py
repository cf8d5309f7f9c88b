"""The async pymilvus users' calls made from the asyncio loop itself: no thread hand-off per call.

Otherwise each call of an async user crosses threads twice: its greenlet hands the call to the loop
(``runtime.bridge``) and sleeps until the loop wakes the hub with the answer; in the open model a schedule greenlet
also wakes at each slot and spawns a send greenlet. That is hundreds of thread wake-ups a second, each paid in the
generator's CPU and in the latency we report (bench/COST.md: a schedule on a bare asyncio loop reported 6.1-6.5 ms
against our users' 7.4-9.1 ms on the same server, run F; one async user cost 2,300-2,500 us of CPU per search
against a bare loop's 1,450).

Here a user's open-model schedules, or in the closed model its task loop (a task by weight, the call or fan-out, the
class's ``wait_time``), are asyncio tasks on the process's loop; an open-model send is a task of its own there, a
closed-model call runs in its user's task (one task per user, not one per call). Only what
must happen on the hub goes back to it: the open-model counts and each call's request row, posted to the process's
``Outbox`` and done in order by one greenlet per batch (one wake-up of the hub per batch, not two per call). Nothing
of the hub's is touched from the loop's thread; the Locust user itself waits in Locust's wait, where a stop ends it
at once (its stop lets the calls already made answer, and reports them).

Only for users whose every operation is a single read (``eligible``): its inputs, call and outcome touch nothing
but the user's own store, so they run on the loop's thread. A user with writes, follow-up calls or bookkeeping,
and any user under ``--iterations`` (counted by Locust's own task loop), keeps the greenlets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent

from loadgen.clients.base import Operation, Skip
from loadgen.errors import CallTimeout
from loadgen.runtime import bridge
from loadgen.stats.timing import Sample, ameasure, ameasure_many
from loadgen.users import schedule
from loadgen.workload.arrival_rate import Pacer, lag_ms

StoreUser = Any  # loadgen.users.base.StoreUser, which imports this module

# what the loop posts waits up to this long for the hub, so one wake-up carries a batch (at 150 calls/s, one wake-up
# per call cost as much as the two hand-offs it replaced; at 0.02 s the threads beside the loop's still spent
# 100-115 us a call of one user, 65-70 us at 0.1 s, of which the hub ~30 and grpc's poller ~27: bench/COST.md
# sections 10-11). A row's time is measured on the loop: only Locust sees it later (its charts refresh every 2 s); a
# user's stop flushes what is left
BATCH_S = 0.1
# a closed-model user with no wait between calls yields to the loop's other tasks at least this often, for a store
# whose calls answer at once (a real call waits on the loop for its answer anyway: a trip round the loop after each
# cost one async user ~13 us of the loop's thread per call)
YIELD_EVERY = 16


def eligible(ops: Iterable[Operation]) -> bool:
    """Every operation a single read with no bookkeeping: safe to prepare, call and settle on the loop's thread."""
    return all(op.kind == "read" and op.follow is None and op.done is None for op in ops)


class Outbox:
    """Work for the hub, posted from the loop's thread: done in order, in a greenlet, one wake-up per batch."""

    def __init__(self) -> None:
        self._items: deque[tuple[StoreUser, Callable[..., None], tuple[Any, ...]]] = deque()
        self._armed = False
        self._hub_loop = gevent.get_hub().loop  # made on the hub's thread (a user's start)

    def post(self, user: StoreUser, fn: Callable[..., None], *args: Any) -> None:
        """From any thread. ``deque.append`` is atomic; the flag only saves wake-ups (a spare one is harmless)."""
        self._items.append((user, fn, args))
        if not self._armed:
            self._armed = True
            self._hub_loop.run_callback_threadsafe(self._wake)

    def _wake(self) -> None:  # a hub callback may not block: the work runs in a greenlet, a batch's time later
        gevent.spawn_later(BATCH_S, self.flush)

    def post_error(self, user: StoreUser, exc: BaseException) -> None:
        """A user's error raised off the hub, reported through Locust (``user_error``) as the hub would."""
        self.post(user, lambda: user.environment.events.user_error.fire(
            user_instance=user, exception=exc, tb=exc.__traceback__))  # fmt: skip

    def post_settled(
        self,
        user: StoreUser,
        store: Any,
        op: Operation,
        inputs: tuple[Any, ...],
        sample: Sample,
        *,
        intended: float | None,
    ) -> None:
        """A call made off the hub: its outcome settled here, its request row the hub's."""
        sample, outcome = user._settle(store, op, inputs, sample)
        self.post(user, user.report_call, op, inputs, sample, outcome, intended)

    def flush(self) -> None:
        """On the hub: everything posted so far, in order. A failure is the user's error, reported through Locust."""
        self._armed = False
        while self._items:
            user, fn, args = self._items.popleft()
            try:
                fn(*args)
            except Exception as exc:
                user.environment.events.user_error.fire(user_instance=user, exception=exc, tb=sys.exc_info()[2])


@functools.lru_cache(maxsize=1)
def outbox(pid: int) -> Outbox:
    """This process's outbox (by pid: a forked ``--processes`` child makes its own, on its own hub)."""
    return Outbox()


# ---- on the hub: what a loop-side send leaves to it ------------------------------------------------------------
def _started(kind: str, rate: float, window_start: float, stream_op: str) -> None:
    if (now := schedule.counts(kind)) is not None:
        now.started(rate, window_start, stream_op)


def _due(kind: str, window_end: float, lag: float | None) -> None:
    """A slot came due; ``lag``: sent that late (ms), or None: dropped (``--max-in-flight`` calls still out)."""
    if (now := schedule.counts(kind)) is not None:
        now.slot(window_end)
        if lag is None:
            now.dropped += 1
        else:
            now.sent_one(lag)


class LoopSends:
    """One user's calls from the loop: its open-model schedules (``(rate, kind, pick, stream_op)`` each) and, in the
    closed model, its task loop, as tasks on the loop; each call a task of its own."""

    def __init__(self, user: StoreUser) -> None:
        self.user = user
        self.outbox = outbox(os.getpid())
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Task[None]] = set()  # open-model sends in flight
        self._busy: set[asyncio.Task[None]] = set()  # closed-model loops in a call (a stop waits for these)
        self._halting = False
        self.closed = False  # the closed model's task loop was started

    def start(
        self,
        schedules: list[tuple[float, str, Callable[[], str], str]],
        closed: tuple[list[str], Callable[[], float]] | None = None,
    ) -> None:
        """The schedules, and ``closed``: the closed model's tasks (names by weight, and the wait between two)."""
        loop = bridge.loop
        self.closed = self.closed or closed is not None

        def begin() -> None:  # on the loop's thread
            runs = [self._schedule(loop, rate, kind, pick, stream_op) for rate, kind, pick, stream_op in schedules]
            if closed is not None:
                runs.append(self._closed(*closed))
            for run in runs:
                task = loop.create_task(run)
                task.add_done_callback(self._crashed)
                self._tasks.append(task)

        loop.call_soon_threadsafe(begin)

    def stop(self, timeout: float) -> None:
        """On the hub (the user's stop): no more sends; calls already made get their answer (or their timeout),
        within ``timeout``, then are cancelled unreported, as the greenlet path kills its sends; every row of the
        calls that answered is reported before this returns."""

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
            self._error(exc)

    def _error(self, exc: BaseException) -> None:
        self.outbox.post_error(self.user, exc)

    async def _schedule(
        self, loop: asyncio.AbstractEventLoop, rate: float, kind: str, pick: Callable[[], str], stream_op: str
    ) -> None:
        """``schedule.run`` on the loop: the same pacer, phase and counts."""
        user, post = self.user, self.outbox.post
        seed, phase = user._rng.randrange(1 << 30), user._rng.random()
        pacer = Pacer(rate, process=user.settings.arrival_process, seed=seed, phase=phase)
        wall_offset = time.time() - time.perf_counter()
        post(user, _started, kind, rate, pacer.start + wall_offset, stream_op)
        limit = user.settings.max_in_flight
        while True:
            for intended in pacer.due(time.perf_counter()):
                window_end = intended + wall_offset + 1.0 / rate
                if len(self._calls) >= limit:
                    post(user, _due, kind, window_end, None)
                    continue
                post(user, _due, kind, window_end, lag_ms(intended))
                task = loop.create_task(self._call(pick(), intended, kind))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
                task.add_done_callback(self._crashed)
            await asyncio.sleep(max(pacer.next_due - time.perf_counter(), 0.0))

    async def _closed(self, plan: list[str], wait: Callable[[], float]) -> None:
        """Locust's task loop for one user, on the loop: a task by weight, its call (or fan-out), the user's wait.
        The call runs in this task (no task and no shield per call: at one call in flight each cost a trip round
        the loop between two calls); while it does, the task is ``busy``: a stop cancels it only between calls,
        and otherwise lets the call answer, then the loop ends. A wait of 0 (``constant(0)``) makes no trip round
        the loop either: a call already waits there for its answer; only every ``YIELD_EVERY``-th does, for a
        store that answers without waiting."""
        rng, me = self.user._rng, asyncio.current_task()
        assert me is not None
        calls = 0
        while not self._halting:
            name = rng.choice(plan)
            self._busy.add(me)
            try:
                await (self._fanout() if name == "fanout" else self._call(name, None, ""))
            except Exception as exc:  # like Locust: the user's error is reported, the user goes on
                self._error(exc)
            finally:
                self._busy.discard(me)
            calls += 1
            if not self._halting and ((pause := wait()) > 0 or calls % YIELD_EVERY == 0):
                await asyncio.sleep(pause)

    async def _fanout(self) -> None:
        """``StoreUser.run_fanout`` on the loop: ``--fanout`` searches gathered, settled here, reported on the hub."""
        user = self.user
        op, store = user.adapter.search, user.store
        all_inputs = [op.inputs(store) for _ in range(user.settings.fanout)]
        makers = [functools.partial(op.async_call, store, *inputs) for inputs in all_inputs]
        samples, batch_ms = await ameasure_many(makers, user.settings.timeout)
        settled = [user._settle(store, op, inputs, sample) for inputs, sample in zip(all_inputs, samples, strict=True)]
        self.outbox.post(user, user.report_fanout, all_inputs, settled, batch_ms)

    async def _call(self, name: str, intended: float | None, kind: str) -> None:
        """One send on the loop: inputs, the timed call, its outcome; the row is the hub's."""
        user = self.user
        op, store = user.ops[name], user.store
        try:
            inputs = op.inputs(store)
        except Skip:
            self.outbox.post(user, user.skipped_send, op, kind)
            return
        sample = await ameasure(lambda: op.async_call(store, *inputs), user.settings.timeout)
        self.outbox.post_settled(user, store, op, inputs, sample, intended=intended)
