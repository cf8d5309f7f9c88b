"""Locust users over any adapter's table of operations: one task per operation, for the sync and the async flavour.

A sync user calls its store directly (grpc is gevent-cooperative). An async user awaits one coroutine per task on
the process's asyncio loop, so each user has one request in flight, like a sync user; the ``fanout`` task gathers
``--fanout`` concurrent calls of the layer's search (the seed tutorials' pattern): each call is a row of request type
``<layer>-async-fanout`` (a different concurrency from single calls, so the sync and async rows compare like with
like) and the batch's time is a statistic of its own. Request names are the library's method names; request types
``<layer>[-async]``.

With ``--arrival-rate`` (the open model) a user instead sends its share of the total rate on a schedule, each send
in a greenlet of its own, all on the user's one client (as an app shares one client among its requests: grpc
multiplexes them; a pool of clients grew connections exactly when the server slowed down, and made it slower);
``--stream-rates`` adds fixed-rate schedules of single operations next to either model. See
``loadgen.workload.arrival_rate``.

An async user whose class allows it (``loop_sends``: the pymilvus and fake-store layers) and whose every operation
is a single read makes its calls from the asyncio loop itself, in either model, and only its rows come back to the
hub, in batches (``loadgen.users.loop_sends``): no thread hand-off per call. A sync user of those layers does the
same in the closed model from an OS thread of its own (``thread_sends``, ``loadgen.users.thread_sends``), where grpc
waits for its call in the calling thread, as in an app's thread or a bare pymilvus loop.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.pool
from locust import User

from loadgen import clients
from loadgen.clients.base import Operation, Outcome, Skip, chain
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout
from loadgen.locust import hooks, starting
from loadgen.runtime import bridge, freeze_heap, off_hub
from loadgen.stats.timing import Sample, ameasure, ameasure_many, measure, report
from loadgen.users import schedule, thread_sends
from loadgen.users.loop_sends import LoopSends, eligible
from loadgen.users.thread_sends import ThreadSends
from loadgen.workload.arrival_rate import admit, paced_wait


def _task(op: str) -> Callable[[StoreUser], None]:
    def run(user: StoreUser) -> None:
        user.run_op(op)

    run.__name__ = op
    return run


def _fanout(user: StoreUser) -> None:
    user.run_fanout()


def _always(op: str) -> Callable[[], str]:
    return lambda: op


def _paced(user: StoreUser) -> None:
    """The open model's task: nothing. The schedule runs in greenlets (see ``start_schedules``); the user waits in
    Locust's wait (``paced_wait``), where Locust stops a user at once."""


def _from_loop(user: StoreUser) -> None:
    """The closed model's task of a user whose calls go from the asyncio loop (or, sync, from a thread of its own):
    it starts that task loop (once; Locust runs it again after each ``paced_wait``). Here, not in ``on_start``: a
    user driven by hand (``run_op``) makes no calls of its own."""
    user.start_closed_loop()


def _placeholder(user: StoreUser) -> None:  # pragma: no cover - replaced per instance in __init__
    raise RuntimeError("tasks are set per instance")


class StoreUser(User):
    """Tasks over one client layer. Subclasses set ``layer`` and ``use_async``."""

    abstract = True
    layer = "pymilvus"
    use_async = False
    # async users whose every operation is a single read call from the asyncio loop, in either model (loop_sends)
    loop_sends = False
    # sync users whose every operation is a single read run the closed model's task loop in a thread (thread_sends)
    thread_sends = False
    tasks = [_placeholder]  # noqa: RUF012 - Locust wants it non-empty; instances get weighted lists

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.settings = hooks.settings_for(environment)
        self.request_type = self.layer + ("-async" if self.use_async else "")
        self.adapter = clients.adapter(self.layer)
        self.ops: dict[str, Operation] = dict(self.adapter.operations)
        self.check_settings(self.settings)
        weights = self.task_weights(self.settings)
        self.tasks = [_fanout if op == "fanout" else _task(op) for op, w in weights.items() for _ in range(w)]
        self.store: Any = None
        self._timeout = self.settings.timeout + 1.0  # the loop's own deadline fires first; this guards a stuck loop
        # the open model and streams: single calls only (fanout is a closed-loop batch), picked by weight
        self._open_ops = [(op, w) for op, w in weights.items() if op != "fanout" and w > 0]
        if self.settings.arrival_rate:
            self.tasks = [_paced]
            self.wait_time = paced_wait  # type: ignore[method-assign]
        self._in_flight = gevent.pool.Group()
        self._schedules: list[gevent.Greenlet] = []
        self._loop_sends: LoopSends | None = None
        self._thread_sends: ThreadSends | None = None
        self._thread_claimed = False  # a sync user that runs in a thread (thread_sends.claim) until its stop
        self._rng = random.Random(self.settings.seed + id(self))
        off_hub = self._sends_off_hub(weights)
        self._on_loop = off_hub and self.use_async
        self._closed_plan: list[str] = []  # closed-model tasks run by the loop or a thread, by weight
        self._closed_wait: Callable[[], float] = self.wait_time
        if off_hub and not self.settings.arrival_rate:
            self._closed_plan = [op for op, w in weights.items() for _ in range(w)]
            self.tasks = [_from_loop]  # then the user waits in Locust's wait, where a stop ends it at once
            self.wait_time = paced_wait  # type: ignore[method-assign]

    @classmethod
    def task_weights(cls, settings: Settings) -> dict[str, int]:
        """The weight of each of this class's tasks under ``settings``' ``--weights``."""
        return clients.class_weights(cls.layer, cls.use_async, settings.weights)

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """The class has something to do under ``settings``: else one line (before any collection is prepared)."""
        clients.check_class(cls.__name__, cls.layer, cls.use_async, settings.weights, bool(settings.arrival_rate))

    def _sends_off_hub(self, weights: dict[str, int]) -> bool:
        """Whether this user's calls go from the asyncio loop itself (``loadgen.users.loop_sends``: an async user, in
        either model) or from a thread of its own (``loadgen.users.thread_sends``: a sync user, closed model): a
        layer that allows it, every operation it sends a single read, and no ``--iterations`` (Locust counts those in
        its own task loop); a sync user, only in a test of few users (``thread_sends.claim``)."""
        s = self.settings
        allowed = self.loop_sends if self.use_async else self.thread_sends and not s.arrival_rate
        if not allowed or getattr(self.environment.parsed_options, "iterations", None):
            return False
        used = [self.ops[op] for op in s.stream_rates if op in self.ops]
        if s.arrival_rate:
            used += [self.ops[op] for op, _ in self._open_ops]
        else:
            used += [self.adapter.search if op == "fanout" else self.ops[op] for op, w in weights.items() if w > 0]
        if not eligible(used):
            return False
        if not self.use_async:
            self._thread_claimed = thread_sends.claim(s.total_users)
            return self._thread_claimed
        return True

    # ---- the store ------------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        # the library's sync constructors block their thread while they connect (up to --timeout on a frozen
        # server): they run on gevent's thread pool, so neither the hub nor the asyncio loop every async user
        # shares waits for them; an async store then only binds its async clients on the loop
        store = off_hub(self.adapter.open, self.settings, self.use_async)
        if self.use_async:
            try:
                bridge.run(self.adapter.attach(store), self._timeout)
            except BaseException:
                self._close_store(store)
                raise
        self.store = store
        freeze_heap()  # the user's long-lived objects are made: out of the full collections' way (see runtime)
        self.start_schedules()

    def on_stop(self) -> None:
        gevent.killall(self._schedules)
        self._schedules = []
        if self._thread_sends is not None:
            self._thread_sends.stop(self._timeout)
            self._thread_sends = None
        if self._thread_claimed:
            thread_sends.release()
            self._thread_claimed = False
        if self._loop_sends is not None:
            self._loop_sends.stop(self._timeout)
            self._loop_sends = None
        self._in_flight.join(timeout=self._timeout)  # sends already made get their answer (or their timeout)
        self._in_flight.kill()
        store, self.store = self.store, None
        if store is not None:
            self._close_store(store)

    def _close_store(self, store: Any) -> None:
        try:
            if self.use_async:
                bridge.run(self.adapter.aclose(store), self._timeout)
            else:
                self.adapter.close(store)
        except Exception:  # closing after a failed server must not hide the run's results
            pass

    # ---- the open model and streams ---------------------------------------------------------------------------------
    def start_schedules(self) -> None:
        """One schedule for ``--arrival-rate`` (ops by weight) and one per ``--stream-rates`` operation, each at this
        user's share of the total: the rate divided by the users in the whole test (set by the master)."""
        s = self.settings
        runner = self.environment.runner
        share = 1.0 / max(s.total_users or (runner.user_count if runner is not None else 1), 1)
        plans: list[tuple[float, str, Callable[[], str], str]] = []  # (rate, kind, pick, stream op)
        if s.arrival_rate:
            ops, weights = zip(*self._open_ops, strict=True)
            pick = lambda: self._rng.choices(ops, weights)[0]  # noqa: E731
            plans.append((s.arrival_rate * share, self.request_type, pick, ""))
        stream_kind = f"{self.request_type}[stream]"
        for op, rate in s.stream_rates.items():
            if op in self.ops:  # else another layer's operation
                plans.append((rate * share, stream_kind, _always(op), op))
        if self._on_loop and plans:
            self._loop_sends = self._loop_sends or LoopSends(self)
            self._loop_sends.start(plans)
            return
        for rate, kind, pick, stream_op in plans:
            self._spawn(self._schedules.append, self._schedule, rate, kind, self._sender(pick, kind), stream_op)

    def start_closed_loop(self) -> None:
        if self._closed_plan and not self.use_async:
            if self._thread_sends is None:
                self._thread_sends = ThreadSends(self)
                self._thread_sends.start(self._closed_plan, self._closed_wait)
            return
        if self._closed_plan and (self._loop_sends is None or not self._loop_sends.closed):
            self._loop_sends = self._loop_sends or LoopSends(self)
            self._loop_sends.start([], (self._closed_plan, self._closed_wait))

    def _sender(self, pick: Callable[[], str], kind: str) -> Callable[[float], None]:
        """What a schedule calls at each due slot: one send of the operation ``pick`` names, counted under ``kind``
        (bound here, once: a closure over the caller's loop variables sent the rate's calls as streams)."""
        return lambda intended: self._send(pick(), intended, kind)

    def _schedule(self, rate: float, kind: str, send: Callable[[float], None], stream_op: str = "") -> None:
        schedule.run(rate, kind, send, process=self.settings.arrival_process, rng=self._rng, stream_op=stream_op)

    def _spawn(self, keep: Callable[[gevent.Greenlet], Any], fn: Callable[..., Any], *args: Any) -> None:
        """A greenlet of loadgen's that reports its own crash through Locust (``user_error``), never only to stderr."""

        def guarded() -> None:
            try:
                fn(*args)
            except gevent.GreenletExit:
                raise
            except Exception as exc:
                self.environment.events.user_error.fire(user_instance=self, exception=exc, tb=sys.exc_info()[2])

        keep(gevent.spawn(guarded))

    def _send(self, op: str, intended: float, kind: str) -> None:
        if not admit(schedule.counts(kind), intended, len(self._in_flight), self.settings.max_in_flight):
            return
        self._spawn(self._in_flight.add, self._run_sent, op, intended, kind)  # one client, many calls in flight

    def _run_sent(self, op: str, intended: float, kind: str) -> None:
        if self.run_op(op, intended) is None:  # nothing of its own to do yet: counted as skipped, not as sent
            self._unsent(kind)

    @staticmethod
    def _unsent(kind: str) -> None:
        counts = schedule.counts(kind)
        if counts is not None:
            counts.sent -= 1
            counts.skipped += 1

    def skipped_send(self, op: Operation, kind: str) -> None:
        """A loop-side call (``loop_sends``) whose operation had nothing of its own to do yet; ``kind``: the open
        model's send it was ("" in the closed model)."""
        self._skipped(op)
        if kind:
            self._unsent(kind)

    def _skipped(self, op: Operation) -> None:
        if hooks.state.histograms is not None:
            hooks.state.histograms.skip(self.request_type, op.request_name(self.use_async))

    # ---- tasks ------------------------------------------------------------------------------------------------------
    def _context(self, op: Operation, inputs: tuple[Any, ...]) -> dict[str, Any]:
        s = self.settings
        ctx: dict[str, Any] = {"collection": s.collection, "consistency_level": s.consistency_level}
        if inputs and isinstance(inputs[0], list):
            ctx["batch"] = len(inputs[0])
        if op.search:
            ctx.update(top_k=s.top_k, filter=s.filter)
        return ctx

    @staticmethod
    def _settle(store: Any, op: Operation, inputs: tuple[Any, ...], sample: Sample) -> tuple[Sample, Outcome]:
        """After the call, untimed: what came back (which may still turn it into a failure) and bookkeeping."""
        outcome = Outcome(0)
        if sample.error is None:
            try:
                outcome = op.outcome(store, inputs, sample.value)
            except Exception as exc:  # e.g. a server error the library logged and swallowed
                sample = sample.failed(exc)
        if op.done is not None:
            op.done(store, inputs, sample.error is None)
        return sample, outcome

    def run_op(self, name: str, intended: float | None = None) -> Sample | None:
        """One task of operation ``name``: its call, then any follow-up calls it asks for (a freshness probe's
        visibility queries), each measured and reported as a row of its own; ``intended`` is the open model's send
        time, which only the first call counts from. Returns the first call's sample."""
        op, store = self.ops[name], self.store
        try:
            inputs = op.inputs(store)
        except Skip:
            self._skipped(op)
            return None
        if op.follow is None:  # nearly every task: one call, without a chain generator per task on the hot path
            return self._call(op, store, inputs, intended)
        first: Sample | None = None
        for step, step_inputs, pause in chain(self.ops, store, op, inputs):
            if pause:
                gevent.sleep(pause)
            sample = self._call(step, store, step_inputs, intended if first is None else None)
            first = sample if first is None else first
            if sample.error is not None:
                break
        return first

    def _call(self, op: Operation, store: Any, inputs: tuple[Any, ...], intended: float | None) -> Sample:
        """One store call, measured and reported as one request row."""
        if not self.use_async:
            sample = measure(op.call, store, *inputs)
        else:
            begun = time.perf_counter()
            try:
                sample = bridge.run(ameasure(lambda: op.async_call(store, *inputs), self.settings.timeout),
                                    self._timeout)  # fmt: skip
            except CallTimeout as exc:
                sample = Sample(None, self._timeout * 1000.0, exc, 0.0, begun)
        sample, outcome = self._settle(store, op, inputs, sample)
        self.report_call(op, inputs, sample, outcome, intended)
        return sample

    def report_call(
        self, op: Operation, inputs: tuple[Any, ...], sample: Sample, outcome: Outcome, intended: float | None
    ) -> None:
        """A settled call's request row (on the hub: Locust's events are not the loop thread's)."""
        context = self._context(op, inputs)
        if outcome.recall is not None:
            context["recall"] = outcome.recall
        context.update(outcome.extra or {})
        report(self.environment.events, self.request_type, op.request_name(self.use_async), sample,
               length=outcome.length, context=context, intended=intended)  # fmt: skip

    def run_fanout(self) -> None:
        k, op, store = self.settings.fanout, self.adapter.search, self.store
        all_inputs = [op.inputs(store) for _ in range(k)]
        makers = [lambda inputs=inputs: op.async_call(store, *inputs) for inputs in all_inputs]
        try:
            samples, batch_ms = bridge.run(ameasure_many(makers, self.settings.timeout), self._timeout)
        except CallTimeout as exc:
            samples, batch_ms = [Sample(None, self._timeout * 1000.0, exc) for _ in all_inputs], self._timeout * 1e3
        settled = [self._settle(store, op, inputs, x) for inputs, x in zip(all_inputs, samples, strict=True)]
        self.report_fanout(all_inputs, settled, batch_ms)

    def report_fanout(
        self, all_inputs: list[tuple[Any, ...]], settled: list[tuple[Sample, Outcome]], batch_ms: float
    ) -> None:
        """A settled fan-out's rows, one per call, and the batch's time (on the hub)."""
        k, op = self.settings.fanout, self.adapter.search
        kind, name = self.request_type + "-fanout", op.request_name(True)
        for inputs, (sample, outcome) in zip(all_inputs, settled, strict=True):
            context = {**self._context(op, inputs), "fanout": k}
            if outcome.recall is not None:
                context["recall"] = outcome.recall
            context.update(outcome.extra or {})
            report(self.environment.events, kind, name, sample, length=outcome.length, context=context)
        if hooks.state.histograms is not None:
            hooks.state.histograms.batches.record(kind, f"{name}[{k}]", batch_ms)


def _check_classes(_environment: Any, classes: Sequence[type], settings: Settings) -> None:
    """The store users a test will run (``clients.check_classes``)."""
    store = [(c.__name__, c.layer, c.use_async) for c in classes if isinstance(c, type) and issubclass(c, StoreUser)]
    clients.check_classes(store, settings.weights, settings.stream_rates, bool(settings.arrival_rate))


starting.class_checks.append(_check_classes)
