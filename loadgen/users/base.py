"""Locust users over any store adapter: one task per adapter operation, for the sync and the async flavour.

A sync user calls its adapter directly (grpc is gevent-cooperative). An async user awaits one coroutine per task
on the process's asyncio loop, so each user has one request in flight, like a sync user; the ``fanout`` task
gathers ``--fanout`` concurrent calls of the adapter's search operation (the seed tutorials' pattern) and reports
each call and the batch. Request names are the library's method names; request types are ``<layer>[-async]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
from locust import User

from loadgen import adapters, hooks
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.runtime import bridge
from loadgen.settings import layer_weights
from loadgen.timing import Sample, ameasure, ameasure_many, measure, report


def _task(op: str) -> Callable[[StoreUser], None]:
    def run(user: StoreUser) -> None:
        user.run_op(op)

    run.__name__ = op
    return run


def _fanout(user: StoreUser) -> None:
    user.run_fanout()


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

    # ---- the adapter ----------------------------------------------------------------------------
    def on_start(self) -> None:
        if self.use_async:
            self.store = bridge.run(self.store_cls.open(self.settings), self._timeout)
        else:
            self.store = self.store_cls(self.settings)

    def on_stop(self) -> None:
        if self.store is None:
            return
        try:
            if self.use_async:
                bridge.run(self.store.close(), self._timeout)
            else:
                self.store.close()
        finally:
            self.store = None

    def _context(self, op: str, inputs: tuple[Any, ...]) -> dict[str, Any]:
        s = self.settings
        ctx: dict[str, Any] = {"collection": s.collection, "consistency_level": s.consistency_level}
        if inputs and isinstance(inputs[0], list):
            ctx["batch"] = len(inputs[0])
        if op == self.store.fanout_op:
            ctx.update(top_k=s.top_k, filter=s.filter)
        return ctx

    # ---- tasks ----------------------------------------------------------------------------------
    def run_op(self, op: str) -> Sample:
        inputs = self.store.inputs(op)
        if not self.use_async:
            sample = measure(self.store.call, op, *inputs)
        else:
            try:
                sample = bridge.run(ameasure(self.store.call(op, *inputs), self.settings.timeout), self._timeout)
            except CallTimeout as exc:
                sample = Sample(0, self._timeout * 1000.0, exc)
        self.store.done(op, inputs, sample.error is None)
        name = self.store.request_name(op)
        context = self._context(op, inputs)
        observe = getattr(self.store, "observe", None)  # optional: what the adapter learned (e.g. recall)
        if observe is not None and sample.error is None:
            context.update(observe(op, inputs))
        report(self.environment.events, self.request_type, name, sample, context)
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
