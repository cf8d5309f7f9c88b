"""Drivers: how a store user's calls wait, and how what they leave reaches Locust's hub. Everything else about a
call (which operation, its inputs, the outcome, follow-ups, the rows) is the pipeline's (``loadgen.users.pipeline``).

- ``greenlet``: each call in the user's greenlet (a sync call's completion waits on gevent's thread pool, an async
  call is handed to the asyncio loop and back); rows reach the hub at once. Drives every class in every model.
- ``thread``: a sync user's closed-model task loop in an OS thread of its own, where grpc waits for the call in the
  calling thread, as in an app's thread or a bare pymilvus loop; rows reach the hub in batches (``Outbox``).
- ``loop``: an async user's task loop or open-model schedules as tasks on the process's asyncio loop, where its
  calls are awaited with no thread hand-off; rows reach the hub in batches.

``--driver auto`` (the default) takes the first driver, in ``auto_order`` (loop, thread, greenlet), that can drive
the class: decided from the class, its operations and the load model alone, so it is the same for every user of
the class, in every process, at every level of a sweep and every step of a capacity search. ``--driver NAME`` asks
for one; a class it cannot drive is refused in one line before anything is prepared.

A driver is one module of this package holding a ``Driver`` subclass with a ``name``: the package imports every
module it holds, so a fourth driver is one more file here.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent

from loadgen.errors import CallTimeout, LoadgenError
from loadgen.runtime import Answered, bridge
from loadgen.stats.timing import Sample, ameasure, ameasure_many, measure
from loadgen.users.pipeline import Call, Caller, Deliver, Pipeline
from loadgen.users.schedule import Plan

AUTO = "auto"
# the closed model as a driver that runs it gets it: the task names by weight, and the class's wait between two
Closed = tuple[list[str], Callable[[], float]]


@dataclass(frozen=True)
class Use:
    """What decides which drivers can run a user class: all known before any user starts, and the same in every
    process and at every level of a sweep (never the number of users)."""

    use_async: bool
    off_hub: bool  # the class's layer lets its calls run off the hub (``StoreUser.calls_off_hub``)
    reads_only: bool  # every operation it sends is a single read, with no bookkeeping and no follow-up
    open_model: bool  # --arrival-rate
    streams: bool  # --stream-rates names operations of its own
    iterations: bool  # Locust's --iterations: counted by Locust's own task loop


class Driver:
    """The greenlet way of making one call (``task``, ``fanout``): the ``greenlet`` driver's, and that of any user
    driven by hand. A subclass with a ``name`` is a driver; it supplies its own ``start`` and ``stop`` and, to call
    elsewhere, its own way of waiting for a call."""

    name: ClassVar[str] = ""
    auto_order: ClassVar[int] = 100  # ``--driver auto`` tries the drivers in this order
    runs_tasks: ClassVar[bool] = False  # runs the closed model's task loop itself (else Locust's calls ``task``)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            DRIVERS[cls.name] = cls

    @classmethod
    def refuses(cls, use: Use) -> str:
        """Why this driver cannot drive a class used so, in a few words; "" if it can."""
        return ""

    def __init__(self, user: Caller) -> None:
        self.user = user
        self.pipeline = Pipeline(user, self.deliver)
        self.guard = user.settings.timeout + 1.0  # the loop's own deadline fires first; this guards a stuck loop

    def deliver(self, fn: Callable[..., None], *args: Any) -> None:
        """Work for the hub: here, at once (a greenlet is on the hub)."""
        fn(*args)

    def start(self, plans: list[Plan], closed: Closed | None) -> None:
        """The user's open-model and stream schedules, and the closed model's task loop if ``runs_tasks``."""

    def stop(self, timeout: float) -> None:
        """On the hub (the user's stop): calls already made get their answer (or their timeout) within ``timeout``
        and are reported; every row is on the hub when this returns."""

    def task(self, name: str, intended: float | None = None, kind: str = "") -> None:
        """One task in the calling greenlet."""
        call = self.pipeline.begin(name, intended, kind)
        while call is not None:
            if call.pause:
                gevent.sleep(call.pause)
            self._no_call_after_a_stop()
            try:
                sample = self._timed(call)
            except Answered as stopped:  # Locust stopped the user while its call was out: the call answered, and
                self.pipeline.end(call, stopped.result)  # is a row like any other; the user stops after it
                raise
            call = self.pipeline.end(call, sample)

    def _no_call_after_a_stop(self) -> None:
        """Locust's stop kills a user it finds waiting between two tasks; when that user's wake-up was already due,
        it runs first and begins its next task, and the kill lands in the middle of the next call (a sync call cut,
        an RPC cancelled: Milvus 2.3 then failed other users' concurrent calls with "context canceled"). A user
        whose stop has begun lets a kill already on its way land here, before the call, not in it."""
        if self.user.stop_requested:
            gevent.sleep(0)  # the kill was queued before this wake-up: it lands now

    def _timed(self, call: Call) -> Sample:
        store = self.user.store
        if not self.user.use_async:
            return measure(call.op.call, store, *call.inputs)
        begun = time.perf_counter()
        make = functools.partial(call.op.async_call, store, *call.inputs)
        try:
            return bridge.run(ameasure(make, self.pipeline.timeout), self.guard, answer_when_killed=True)
        except CallTimeout as exc:
            return Sample(None, self.guard * 1000.0, exc, 0.0, begun)

    def fanout(self) -> None:
        """``--fanout`` searches gathered on the loop, the calling greenlet waiting for the batch."""
        self._no_call_after_a_stop()
        all_inputs, makers = self.pipeline.fanout()
        try:
            samples, batch_ms = bridge.run(
                ameasure_many(makers, self.pipeline.timeout), self.guard, answer_when_killed=True
            )
        except CallTimeout as exc:
            samples, batch_ms = [Sample(None, self.guard * 1000.0, exc) for _ in all_inputs], self.guard * 1e3
        except Answered as stopped:  # as in task: the batch answered after Locust stopped the user
            self.pipeline.fanout_end(all_inputs, *stopped.result)
            raise
        self.pipeline.fanout_end(all_inputs, samples, batch_ms)

    def error(self, exc: BaseException) -> None:
        """A crash outside any call, reported as the user's error through Locust (never only to stderr)."""
        self.deliver(_user_error, self.user, exc)


def _user_error(user: Caller, exc: BaseException) -> None:
    user.environment.events.user_error.fire(user_instance=user, exception=exc, tb=exc.__traceback__)


DRIVERS: dict[str, type[Driver]] = {}


def names() -> list[str]:
    return sorted(DRIVERS, key=lambda name: DRIVERS[name].auto_order)


def choose(requested: str, use: Use, owner: str) -> type[Driver]:
    """The driver of a class used as ``use``: ``requested`` by name, or by the ``auto`` rule; a driver that cannot
    drive it is one line."""
    if requested == AUTO:
        return next(DRIVERS[name] for name in names() if not DRIVERS[name].refuses(use))
    driver = DRIVERS.get(requested)
    if driver is None:
        raise LoadgenError(f"--driver {requested!r}: choose {AUTO} or one of {', '.join(names())}")
    why = driver.refuses(use)
    if why:
        raise LoadgenError(f"--driver {requested}: {owner} cannot run on it: {why} (--driver {AUTO} picks one)")
    return driver


class Outbox:
    """Work for the hub, posted from another thread (a user's own, the asyncio loop's): done in order, in a
    greenlet, one wake-up of the hub per batch of ``BATCH_S``."""

    def __init__(self) -> None:
        self._items: deque[tuple[Caller, Callable[..., None], tuple[Any, ...]]] = deque()
        self._armed = False
        self._hub_loop = gevent.get_hub().loop  # made on the hub's thread (a user's start)

    def post(self, user: Caller, fn: Callable[..., None], *args: Any) -> None:
        """From any thread. ``deque.append`` is atomic; the flag only saves wake-ups (a spare one is harmless)."""
        self._items.append((user, fn, args))
        if not self._armed:
            self._armed = True
            self._hub_loop.run_callback_threadsafe(self._wake)

    def _wake(self) -> None:  # a hub callback may not block: the work runs in a greenlet, a batch's time later
        gevent.spawn_later(BATCH_S, self.flush)

    def flush(self) -> None:
        """On the hub: everything posted so far, in order. A failure is the user's error, reported through Locust."""
        self._armed = False
        while self._items:
            user, fn, args = self._items.popleft()
            try:
                fn(*args)
            except Exception as exc:
                user.environment.events.user_error.fire(user_instance=user, exception=exc, tb=sys.exc_info()[2])

    def deliver_for(self, user: Caller) -> Deliver:
        return functools.partial(self.post, user)


# how long what a thread or the loop posts waits for the hub, so one wake-up carries a batch (bench/COST.md sections
# 10-11: one wake-up per call cost as much as the hand-offs it replaced). A row's time is measured where the call
# ran: only Locust sees it later (its charts refresh every 2 s); a user's stop flushes what is left
BATCH_S = 0.1


@functools.lru_cache(maxsize=1)
def outbox(pid: int) -> Outbox:
    """This process's outbox (by pid: a forked ``--processes`` child makes its own, on its own hub)."""
    return Outbox()


def this_outbox() -> Outbox:
    return outbox(os.getpid())


for _found in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_found.name}")
