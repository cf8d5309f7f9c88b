"""Locust users over any store adapter: one task per adapter operation, for the sync and the async flavour.

A sync user calls its adapter directly (grpc is gevent-cooperative). An async user awaits one coroutine per task
on the process's asyncio loop, so each user has one request in flight, like a sync user; the ``fanout`` task
gathers ``--fanout`` concurrent calls of the adapter's search operation (the seed tutorials' pattern) and reports
each call and the batch. Request names are the library's method names; request types are ``<layer>[-async]``.

With ``--arrival-rate`` (the open model) a user instead sends its share of the total rate on a schedule, each send
in a greenlet of its own, all on the user's one client (as an app shares one client among its requests: grpc
multiplexes them; a pool of clients grew connections exactly when the server slowed down, and made it slower);
``--stream-rates`` adds fixed-rate schedules of single operations next to either model. See
``loadgen.workload.arrival_rate``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.pool
from locust import User

from loadgen import clients as adapters
from loadgen.clients import layer_weights
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.locust import hooks
from loadgen.runtime import bridge
from loadgen.stats.timing import Sample, ameasure, ameasure_many, measure, report
from loadgen.workload.arrival_rate import LATE_MS, Pacer


def _task(op: str) -> Callable[[StoreUser], None]:
    def run(user: StoreUser) -> None:
        user.run_op(op)

    run.__name__ = op
    return run


def _fanout(user: StoreUser) -> None:
    user.run_fanout()


def _paced(user: StoreUser) -> None:
    """The open model's task: the schedule runs in greenlets (see ``start_schedules``); this only keeps the user
    alive and lets Locust stop it between naps."""
    gevent.sleep(0.25)


def _placeholder(user: StoreUser) -> None:  # pragma: no cover - replaced per instance in __init__
    raise RuntimeError("tasks are set per instance")


class StoreUser(User):
    """Tasks over one client layer. Subclasses set ``layer`` and ``use_async``."""

    abstract = True
    layer = "pymilvus"
    use_async = False
    tasks = [_placeholder]  # noqa: RUF012 - Locust wants it non-empty; instances get weighted lists

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.settings = hooks.settings_for(environment)
        self.request_type = self.layer + ("-async" if self.use_async else "")
        self.store_cls = adapters.load(self.layer, use_async=self.use_async)
        weights = layer_weights(self.settings.weights, self.store_cls.operations, fanout=self.use_async)
        tasks: list[Any] = [_fanout if op == "fanout" else _task(op) for op, w in weights.items() for _ in range(w)]
        if not tasks:
            raise LoadgenError(f"{type(self).__name__}: every task has weight 0 in --weights")
        self.tasks = tasks
        self.store: Any = None
        self._timeout = self.settings.timeout + 1.0  # the loop's own deadline fires first; this guards a stuck loop
        # the open model and streams: single calls only (fanout is a closed-loop batch), picked by weight
        self._open_ops = [(op, w) for op, w in weights.items() if op != "fanout" and w > 0]
        if self.settings.arrival_rate and not self._open_ops:
            raise LoadgenError(f"{type(self).__name__}: --arrival-rate needs a task other than fanout in --weights")
        if self.settings.arrival_rate:
            self.tasks = [_paced]
        self._in_flight = gevent.pool.Group()
        self._schedules: list[gevent.Greenlet] = []
        self._rng = random.Random(self.settings.seed + id(self))

    # ---- the adapter ----------------------------------------------------------------------------
    def on_start(self) -> None:
        self.store = self._open_store()
        self.start_schedules()

    def on_stop(self) -> None:
        gevent.killall(self._schedules)
        self._schedules = []
        self._in_flight.join(timeout=self._timeout)  # sends already made get their answer (or their timeout)
        self._in_flight.kill()
        store, self.store = self.store, None
        if store is not None:
            self._close_store(store)

    def _open_store(self) -> Any:
        if self.use_async:
            return bridge.run(self.store_cls.open(self.settings), self._timeout)
        return self.store_cls(self.settings)

    def _close_store(self, store: Any) -> None:
        try:
            if self.use_async:
                bridge.run(store.close(), self._timeout)
            else:
                store.close()
        except Exception:  # closing after a failed server must not hide the run's results
            pass

    # ---- the open model and streams -------------------------------------------------------------
    def start_schedules(self) -> None:
        """One schedule for ``--arrival-rate`` (ops by weight) and one per ``--stream-rates`` operation, each at this
        user's share of the total: the rate divided by the users in the whole test (set by the master)."""
        s = self.settings
        runner = self.environment.runner
        share = 1.0 / max(s.total_users or (runner.user_count if runner is not None else 1), 1)
        if s.arrival_rate:
            ops, weights = zip(*self._open_ops, strict=True)
            pick = lambda: self._rng.choices(ops, weights)[0]  # noqa: E731
            self._schedules.append(gevent.spawn(self._run_schedule, s.arrival_rate * share, pick, self.request_type))
        for op, rate in s.stream_rates.items():
            kind = f"{self.request_type}[stream]"
            self._schedules.append(gevent.spawn(self._run_schedule, rate * share, lambda op=op: op, kind, op))

    def _run_schedule(self, rate: float, pick: Callable[[], str], kind: str, stream_op: str = "") -> None:
        pacer = Pacer(rate, process=self.settings.arrival_process, seed=self._rng.randrange(1 << 30))
        wall_offset = time.time() - time.perf_counter()
        counts = self._counts(kind)
        if counts is not None:
            counts.target_rate += rate
            counts.window_start = min(counts.window_start, pacer.start + wall_offset)
            if stream_op:
                counts.streams[stream_op] = counts.streams.get(stream_op, 0.0) + rate
        while True:
            for intended in pacer.due(time.perf_counter()):
                counts = self._counts(kind)
                if counts is not None:
                    counts.intended += 1
                    counts.window_end = max(counts.window_end, intended + wall_offset + 1.0 / rate)
                self._send(pick(), intended, kind)
            gevent.sleep(min(max(pacer.next_due - time.perf_counter(), 0.0), 0.25))

    @staticmethod
    def _counts(kind: str) -> Any:
        """This process's counts for ``kind``, looked up each time: a worker's are handed to the master and
        replaced at every stats report."""
        arrivals = hooks.state.arrivals
        return arrivals.of(kind) if arrivals is not None else None

    def _send(self, op: str, intended: float, kind: str) -> None:
        counts = self._counts(kind)
        if len(self._in_flight) >= self.settings.max_in_flight:
            if counts is not None:
                counts.dropped += 1  # the server is not keeping up with the schedule: not sent, counted
            return
        if counts is not None:
            lag_ms = max((time.perf_counter() - intended) * 1000.0, 0.0)
            counts.sent += 1
            counts.lag_sum_ms += lag_ms
            counts.lag_max_ms = max(counts.lag_max_ms, lag_ms)
            counts.late += lag_ms > LATE_MS
        self._in_flight.spawn(self.run_op, op, None, intended)  # one client, many calls in flight

    def _context(self, op: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
        s = self.settings
        ctx: dict[str, Any] = {"collection": s.collection, "consistency_level": s.consistency_level}
        if inputs and isinstance(inputs[0], list):
            ctx["batch"] = len(inputs[0])
        if op == self.store_cls.fanout_op:
            ctx.update(top_k=s.top_k, filter=s.filter)
        return ctx

    # ---- tasks ----------------------------------------------------------------------------------
    def run_op(self, op: str, store: Any = None, intended: float | None = None) -> Sample:
        """One call of ``op``, measured and reported; ``store`` defaults to the user's own, ``intended`` is the open
        model's scheduled send time."""
        store = store or self.store
        inputs = store.inputs(op)
        observe = getattr(store, "observe", None)  # optional: what the adapter learned (e.g. recall)
        observed: dict[str, Any] = {}
        if not self.use_async:
            sample = measure(store.call, op, *inputs)
            if observe is not None and sample.error is None:  # no yield since the call: its own hits
                observed = observe(op, inputs)
        else:

            async def call_and_observe() -> int:
                length = await store.call(op, *inputs)
                if observe is not None:  # before any other call on the loop can replace the store's last hits
                    observed.update(observe(op, inputs))
                return int(length)

            begun = time.perf_counter()
            try:
                sample = bridge.run(ameasure(call_and_observe(), self.settings.timeout), self._timeout)
            except CallTimeout as exc:
                sample = Sample(0, self._timeout * 1000.0, exc, 0.0, begun)
        store.done(op, inputs, sample.error is None)
        name = store.request_name(op)
        context = {**self._context(op, inputs), **observed}
        report(self.environment.events, self.request_type, name, sample, context, intended=intended)
        return sample

    def run_fanout(self) -> None:
        s, k, op = self.settings, self.settings.fanout, self.store.fanout_op
        all_inputs = [self.store.inputs(op) for _ in range(k)]
        calls = [self.store.call(op, *inputs) for inputs in all_inputs]
        try:
            samples, batch = bridge.run(ameasure_many(calls, s.timeout), self._timeout)
        except CallTimeout as exc:
            samples, batch = [], Sample(0, self._timeout * 1000.0, exc)
        events, name = self.environment.events, self.store.request_name(op)
        context = {**self._context(op, all_inputs[0]), "fanout": k}
        for sample in samples:
            report(events, self.request_type, name, sample, context)
        report(events, self.request_type + "-batch", f"{name}_fanout[{k}]", batch, context)
