"""Locust users over any VectorStore adapter: the tasks, written once, for the sync and the async flavour.

A sync user calls its adapter directly (grpc is gevent-cooperative). An async user awaits one coroutine per task
on the process's asyncio loop, so each user has one request in flight, like a sync user; ``search_fanout``
gathers ``--fanout`` concurrent searches (the seed tutorials' pattern) and reports each call and the batch.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
from locust import User, task

from loadgen import adapters, hooks
from loadgen.data import CATEGORIES, RowFactory
from loadgen.errors import CallTimeout
from loadgen.runtime import bridge
from loadgen.timing import Sample, ameasure, ameasure_many, measure, report

_user_ids = itertools.count()


class StoreUser(User):
    """Tasks over one client layer. Subclasses set ``layer`` and ``use_async``."""

    abstract = True
    layer = "pymilvus"
    use_async = False

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.settings = hooks.settings_for(environment)
        self.request_type = self.layer + ("-async" if self.use_async else "")
        self.rows = RowFactory(self.settings.dim, self.settings.metric_type, self.settings.seed + next(_user_ids) + 1)
        self.own_ids: deque[int] = deque(maxlen=100_000)  # rows this user inserted: what delete removes
        self.store: Any = None
        weights = dict(self.settings.weights)
        if not self.use_async:
            weights["search_fanout"] = 0  # a sync client cannot have several calls in flight
        self.tasks = [getattr(type(self), name) for name, w in weights.items() for _ in range(w)]
        self._timeout = self.settings.timeout + 1.0  # the loop's own deadline fires first; this guards a stuck loop

    # ---- the adapter ----------------------------------------------------------------------------
    def on_start(self) -> None:
        cls = adapters.load(self.layer, use_async=self.use_async)
        if self.use_async:
            self.store = bridge.run(cls.open(self.settings), self._timeout)
        else:
            self.store = cls(self.settings)

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

    def _call(self, op: str, *args: Any) -> Sample:
        method: Callable[..., Any] = getattr(self.store, op)
        if not self.use_async:
            return measure(method, *args)
        try:
            return bridge.run(ameasure(method(*args), self.settings.timeout), self._timeout)
        except CallTimeout as exc:
            return Sample(0, self._timeout * 1000.0, exc)

    def _run(self, op: str, *args: Any, **context: Any) -> Sample:
        sample = self._call(op, *args)
        report(
            self.environment.events, self.request_type, op, sample, {"collection": self.settings.collection, **context}
        )
        return sample

    # ---- tasks (weights come from --weights; these are the defaults) -----------------------------
    @task(2)
    def insert(self) -> None:
        ids = self.rows.new_ids(self.settings.batch_size)
        if self._run("insert", self.rows.rows(ids), batch=len(ids)).error is None:
            self.own_ids.extend(ids)

    @task(1)
    def upsert(self) -> None:
        ids = self.rows.existing_ids(self.settings.batch_size, self.settings.rows)
        self._run("upsert", self.rows.rows(ids), batch=len(ids))

    @task(10)
    def search(self) -> None:
        s = self.settings
        vectors = self.rows.vectors(1).tolist()
        self._run("search", vectors, top_k=s.top_k, filter=s.filter, consistency_level=s.consistency_level)

    @task(2)
    def query(self) -> None:
        expr = self.settings.filter or f"category == {int(self.rows.rng.integers(0, CATEGORIES))}"
        self._run(
            "query", expr, filter=expr, limit=self.settings.top_k, consistency_level=self.settings.consistency_level
        )

    @task(2)
    def get(self) -> None:
        ids = self.rows.existing_ids(self.settings.batch_size, self.settings.rows)
        self._run("get", ids, ids=len(ids))

    @task(1)
    def delete(self) -> None:
        n = min(self.settings.batch_size, len(self.own_ids))
        ids = [self.own_ids.popleft() for _ in range(n)] or self.rows.new_ids(self.settings.batch_size)
        self._run("delete", ids, batch=len(ids), own_rows=n)

    @task(1)
    def search_fanout(self) -> None:
        s, k = self.settings, self.settings.fanout
        calls = [self.store.search(self.rows.vectors(1).tolist()) for _ in range(k)]
        context = {"collection": s.collection, "top_k": s.top_k, "filter": s.filter, "fanout": k}
        try:
            samples, batch = bridge.run(ameasure_many(calls, s.timeout), self._timeout)
        except CallTimeout as exc:
            samples, batch = [], Sample(0, self._timeout * 1000.0, exc)
        events = self.environment.events
        for sample in samples:
            report(events, self.request_type, "search", sample, context)
        report(events, self.request_type + "-batch", f"search_fanout[{k}]", batch, context)
