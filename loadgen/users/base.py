"""Locust users over any adapter's table of operations: one task per operation, for the sync and the async flavour.

Every call goes down one pipeline (``loadgen.users.pipeline``: inputs or skip, the timed call, the outcome,
follow-ups, the rows); the user's driver (``loadgen.users.drivers``, ``--driver``) says only how the call waits (in
the user's greenlet, an OS thread of its own, or on the asyncio loop) and how its rows reach Locust's hub. Each user
has one request in flight at a time in the closed model, like an app's thread; the async users' ``fanout`` task
gathers ``--fanout`` concurrent calls of the layer's search (the seed tutorials' pattern): each call is a row of
request type ``<layer>-async-fanout`` (another concurrency than single calls, so the sync and async rows compare like
with like) and the batch's time is a statistic of its own. Request names are the library's method names; request
types ``<layer>[-async]``.

With ``--arrival-rate`` (the open model) a user instead sends its share of the total rate on a schedule
(``loadgen.users.schedule``), many calls in flight on the user's one client; ``--stream-rates`` adds fixed-rate
schedules of single operations next to either model. See ``loadgen.workload.arrival_rate``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
from locust import User
from locust.env import Environment

from loadgen import clients
from loadgen.clients import shape
from loadgen.clients.base import Operation
from loadgen.config.settings import Settings
from loadgen.locust import hooks, starting
from loadgen.runtime import bridge, freeze_heap, off_hub
from loadgen.stats import tracing
from loadgen.users import drivers
from loadgen.users.schedule import Plan, share
from loadgen.workload.arrival_rate import paced_wait


def _task(op: str) -> Callable[[StoreUser], None]:
    def run(user: StoreUser) -> None:
        user.driver.task(op)

    run.__name__ = op
    return run


def _fanout(user: StoreUser) -> None:
    user.driver.fanout()


def _always(op: str) -> Callable[[], str]:
    return lambda: op


def _paced(user: StoreUser) -> None:
    """The open model's task: nothing. The schedules run in the driver; the user waits in Locust's wait
    (``paced_wait``), where Locust stops a user at once."""


def _driven(user: StoreUser) -> None:
    """The closed model's task of a user whose driver runs the task loop itself (an OS thread, the asyncio loop): it
    starts that loop (once; Locust runs it again after each ``paced_wait``). Here, not in ``on_start``: a user driven
    by hand (``run_op``) makes no calls of its own."""
    user.driver.start([], user.closed)


def _placeholder(user: StoreUser) -> None:  # pragma: no cover - replaced per instance in __init__
    raise RuntimeError("tasks are set per instance")


class StoreUser(User):
    """Tasks over one client layer. Subclasses set ``layer`` and ``use_async``."""

    abstract = True
    layer = "pymilvus"
    use_async = False
    # the layer's single reads may run off the hub (in an OS thread, on the asyncio loop): their inputs, call and
    # outcome touch only the user's own store and never block (``loadgen.users.drivers``)
    calls_off_hub = False
    tasks = [_placeholder]  # noqa: RUF012 - Locust wants it non-empty; instances get weighted lists

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = hooks.settings_for(environment)
        self.request_type = self.layer + ("-async" if self.use_async else "")
        self.adapter = clients.adapter(self.layer)
        self.ops: dict[str, Operation] = tracing.traced_ops(self.layer, self.adapter.operations, self.settings)
        self.check_settings(self.settings)
        weights = self.task_weights(self.settings)
        self.rng = random.Random(self.settings.seed + id(self))
        self._store: Any = None
        self._timeout = self.settings.timeout + 1.0  # the loop's own deadline fires first; this guards a stuck loop
        driver = drivers.choose(self.settings.driver, self.use(self.settings, environment), type(self).__name__)
        self.driver = driver(self)
        # the closed model's tasks by weight and the class's wait between two, for a driver that runs them
        self.closed: drivers.Closed = ([op for op, w in weights.items() for _ in range(w)], self.wait_time)
        self.tasks = [_fanout if op == "fanout" else _task(op) for op, w in weights.items() for _ in range(w)]
        if self.settings.arrival_rate or driver.runs_tasks:
            self.tasks = [_paced if self.settings.arrival_rate else _driven]
            self.wait_time = paced_wait  # type: ignore[method-assign]  # Locust's wait, where a stop ends it at once

    @property
    def store(self) -> Any:
        return self._store

    @classmethod
    def task_weights(cls, settings: Settings) -> dict[str, int]:
        """The weight of each of this class's tasks under ``settings``' ``--weights``."""
        return clients.class_weights(cls.layer, cls.use_async, settings.weights)

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """The class has something to do under ``settings``: else one line (before any collection is prepared)."""
        clients.check_class(cls.__name__, cls.layer, cls.use_async, settings.weights, bool(settings.arrival_rate))

    @classmethod
    def open_ops(cls, settings: Settings) -> list[tuple[str, int]]:
        """The open model's tasks and weights: single calls only (fan-out is a closed-model batch)."""
        return [(op, w) for op, w in cls.task_weights(settings).items() if op != "fanout" and w > 0]

    @classmethod
    def use(cls, settings: Settings, environment: Environment | None) -> drivers.Use:
        """What decides the class's driver: the class, the operations it sends and the load model."""
        table = clients.adapter(cls.layer)
        ops = table.operations
        used = [ops[op] for op in settings.stream_rates if op in ops]
        if settings.arrival_rate:
            used += [ops[op] for op, _ in cls.open_ops(settings)]
        else:
            weights = cls.task_weights(settings)
            used += [table.search if op == "fanout" else ops[op] for op, w in weights.items() if w > 0]
        options = environment.parsed_options if environment is not None else None
        return drivers.Use(
            use_async=cls.use_async, off_hub=cls.calls_off_hub,
            reads_only=all(op.kind == "read" and op.follow is None and op.done is None for op in used),
            open_model=bool(settings.arrival_rate), streams=any(op in ops for op in settings.stream_rates),
            iterations=bool(getattr(options, "iterations", None)),
        )  # fmt: skip

    # ---- the store ------------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        # the library's sync constructors block their thread while they connect (up to --timeout on a frozen
        # server): they run on a thread pool of loadgen's, so neither the hub nor the asyncio loop every async user
        # shares waits for them; an async store then only binds its async clients on the loop
        store = off_hub(self.adapter.open, self.settings, self.use_async)
        if self.use_async:
            try:
                bridge.run(self.adapter.attach(store), self._timeout)
            except BaseException:
                self._close_store(store)
                raise
        self._store = store
        freeze_heap()  # the user's long-lived objects are made: out of the full collections' way (see runtime)
        if hooks.state.drivers is not None:
            hooks.state.drivers.started(type(self).__name__, self.request_type, self.driver.name)
        self.driver.start(self.plans(), None)

    stop_requested = False  # set by Locust's stop of this user (drivers: no call begins after it, see there)

    def stop(self, force: bool = False) -> bool:
        self.stop_requested = True
        return bool(super().stop(force))

    def on_stop(self) -> None:
        self.driver.stop(self._timeout)  # calls already made get their answer (or their timeout), rows reported
        store, self._store = self._store, None
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

    def plans(self) -> list[Plan]:
        """One schedule for ``--arrival-rate`` (ops by weight) and one per ``--stream-rates`` operation, each at this
        user's share of the total rate."""
        s, runner = self.settings, self.environment.runner
        mine = share(s, runner.user_count if runner is not None else 1)
        plans = []
        if s.arrival_rate:
            ops, weights = zip(*self.open_ops(s), strict=True)
            plans.append(Plan(s.arrival_rate * mine, self.request_type, lambda: self.rng.choices(ops, weights)[0]))
        stream_kind = f"{self.request_type}[stream]"
        for op, rate in s.stream_rates.items():
            if op in self.ops:  # else another layer's operation
                plans.append(Plan(rate * mine, stream_kind, _always(op), op))
        return plans

    def run_op(self, name: str) -> None:
        """One task of operation ``name`` in the calling greenlet, whatever the driver (a user driven by hand)."""
        self.driver.task(name)


def _check_classes(environment: Environment | None, classes: Sequence[type], settings: Settings) -> None:
    """The store users a test will run (``clients.check_classes``), and the driver each will run on."""
    store = [c for c in classes if isinstance(c, type) and issubclass(c, StoreUser)]
    clients.check_classes([(c.__name__, c.layer, c.use_async) for c in store], settings.weights,
                          settings.stream_rates, bool(settings.arrival_rate))  # fmt: skip
    for cls in store:
        drivers.choose(settings.driver, cls.use(settings, environment), cls.__name__)
        if shape.asks_shape(settings):  # --nq, --output-fields: only where the library lets the caller choose them
            shape.check_layer(cls.__name__, cls.layer, clients.adapter(cls.layer).request_shape, settings)


starting.class_checks.append(_check_classes)
