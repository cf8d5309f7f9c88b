"""One pipeline for every store call, whatever waits for it:

    pick the operation -> its inputs (or Skip) -> [driver: the timed call] -> outcome -> follow-ups -> rows to the hub

Everything outside the brackets is here, written once; a driver (``loadgen.users.drivers``) supplies only how the
timed call waits (in a greenlet, an OS thread, on the asyncio loop) and how finished work reaches Locust's hub
(``deliver``: at once, or batched). A driver runs one task as::

    call = pipeline.begin(name, intended, kind)
    while call is not None:
        (wait call.pause, if any)
        call = pipeline.end(call, <the timed call of call.op with call.inputs>)

What a call leaves behind runs on the hub, through ``deliver``: the request row (Locust's stats and loadgen's
listeners) and, for a call nothing else of its task waits for (no bookkeeping, no follow-up), its outcome too
(recall scored against the ground truth, hits counted): the user goes on with its next call meanwhile. A call with
bookkeeping (the ids a write made) or a follow-up is settled where it ran, before the task goes on.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from locust.env import Environment

from loadgen.clients.base import Adapter, Operation, Outcome, Skip, follow_up
from loadgen.config.settings import Settings
from loadgen.locust import hooks
from loadgen.stats.timing import Sample, report
from loadgen.users import schedule

# how a driver hands work to the hub: deliver(fn, *args) runs fn(*args) there, at once or later, in order
Deliver = Callable[..., None]


class Caller(Protocol):
    """What the pipeline and a driver use of a user (a ``StoreUser``): public names only, read-only."""

    @property
    def environment(self) -> Environment: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def request_type(self) -> str: ...
    @property
    def use_async(self) -> bool: ...
    @property
    def ops(self) -> Mapping[str, Operation]: ...
    @property
    def adapter(self) -> Adapter: ...
    @property
    def rng(self) -> random.Random: ...  # the user's own: draws made where its calls run
    @property
    def store(self) -> Any: ...  # the adapter's per-user state (``Adapter.open``)
    @property
    def stop_requested(self) -> bool: ...  # Locust's stop has begun for this user (``StoreUser.stop``)


@dataclass(slots=True)
class Call:
    """One store call of a task: the operation, its inputs, the open model's intended send time (the task's first
    call only: latency counts from it), the send it belongs to (``kind``, "" in the closed model) and how long to
    wait before it (a follow-up)."""

    op: Operation
    inputs: tuple[Any, ...]
    intended: float | None = None
    kind: str = ""
    pause: float = 0.0


def settle(store: Any, op: Operation, inputs: tuple[Any, ...], sample: Sample) -> tuple[Sample, Outcome]:
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


class Pipeline:
    """One user's calls: made ready here, made by its driver, settled and reported here."""

    def __init__(self, user: Caller, deliver: Deliver) -> None:
        self.user = user
        self.deliver = deliver
        self.ops = user.ops
        self.events = user.environment.events
        s = user.settings
        self.timeout = s.timeout
        self._base = {"collection": s.collection, "consistency_level": s.consistency_level}
        self._search = {**self._base, "top_k": s.top_k, "filter": s.filter}

    # ---- where the driver is ------------------------------------------------------------------------------------
    def begin(self, name: str, intended: float | None = None, kind: str = "") -> Call | None:
        """Task ``name``'s first call, or None: nothing of its own to do yet (counted as skipped, not sent)."""
        op = self.ops[name]
        try:
            inputs = op.inputs(self.user.store)
        except Skip:
            self.deliver(self._skipped, op, kind)
            return None
        return Call(op, inputs, intended, kind)

    def end(self, call: Call, sample: Sample) -> Call | None:
        """After ``call``'s timed span: its row on its way to the hub; the task's next call, if any."""
        op = call.op
        if op.done is None and op.follow is None:  # nothing here waits for the outcome: the hub settles it
            self.deliver(self._settle_report, call, sample)
            return None
        store = self.user.store
        sample, outcome = settle(store, op, call.inputs, sample)
        self.deliver(self._report, call, sample, outcome)
        nxt = follow_up(self.ops, store, op, call.inputs) if sample.error is None else None
        return None if nxt is None else Call(nxt[0], nxt[1], None, call.kind, nxt[2])

    def fanout(self) -> tuple[list[tuple[Any, ...]], list[Callable[[], Awaitable[Any]]]]:
        """``--fanout`` searches of the layer: each one's inputs, and what makes its call (on the loop)."""
        search = self.user.adapter.search
        op, store = self.ops.get(search.name, search), self.user.store  # the user's own: traced under --otel
        all_inputs = [op.inputs(store) for _ in range(self.user.settings.fanout)]
        return all_inputs, [functools.partial(op.async_call, store, *inputs) for inputs in all_inputs]

    def fanout_end(self, all_inputs: list[tuple[Any, ...]], samples: list[Sample], batch_ms: float) -> None:
        self.deliver(self._fanout_rows, all_inputs, samples, batch_ms)

    # ---- on the hub ---------------------------------------------------------------------------------------------
    def _skipped(self, op: Operation, kind: str) -> None:
        if hooks.state.histograms is not None:
            hooks.state.histograms.skip(self.user.request_type, op.request_name(self.user.use_async))
        if kind:
            schedule.unsent(kind)

    def _settle_report(self, call: Call, sample: Sample) -> None:
        sample, outcome = settle(self.user.store, call.op, call.inputs, sample)
        self._report(call, sample, outcome)

    def _context(self, op: Operation, inputs: tuple[Any, ...], outcome: Outcome) -> dict[str, Any]:
        context = dict(self._search if op.search else self._base)
        if inputs and isinstance(inputs[0], list):
            context["batch"] = len(inputs[0])
        if op.queries is not None:  # --nq: the query vectors this call sent, whether it then failed or not
            context["nq"] = op.queries(self.user.store, inputs)
        if outcome.recall is not None:
            context["recall"] = outcome.recall
        if outcome.response_bytes is not None:
            context["response_bytes"] = outcome.response_bytes
        if outcome.extra:
            context.update(outcome.extra)
        return context

    def _report(self, call: Call, sample: Sample, outcome: Outcome) -> None:
        """A settled call's request row."""
        user = self.user
        report(self.events, user.request_type, call.op.request_name(user.use_async), sample, length=outcome.length,
               context=self._context(call.op, call.inputs, outcome), intended=call.intended)  # fmt: skip

    def _fanout_rows(self, all_inputs: list[tuple[Any, ...]], samples: list[Sample], batch_ms: float) -> None:
        """A fan-out's rows, one per call, and the batch's time."""
        user, op = self.user, self.user.adapter.search
        k, store = len(all_inputs), user.store
        kind, name = user.request_type + "-fanout", op.request_name(True)
        for inputs, raw in zip(all_inputs, samples, strict=True):
            sample, outcome = settle(store, op, inputs, raw)
            context = {**self._context(op, inputs, outcome), "fanout": k}
            report(self.events, kind, name, sample, length=outcome.length, context=context)
        if hooks.state.histograms is not None:
            hooks.state.histograms.batches.record(kind, f"{name}[{k}]", batch_ms)
