"""``VectorStoreUser``: the base class for your own locustfile (``from loadgen import VectorStoreUser``).

A subclass writes Locust ``@task`` methods, sync or ``async def``, around its own retrieval code, and calls the
stores through timed handles (``loadgen.clients.timed``): ``self.milvus`` (MilvusClient), ``self.amilvus``
(AsyncMilvusClient), ``self.langchain`` (langchain-milvus ``Milvus``, sync and ``a`` methods) and ``self.llamaindex``
(llama-index ``MilvusVectorStore``, also inside a ``VectorStoreIndex`` and its query engines). Each is built on first
use, on loadgen's asyncio loop where the library needs one, with a connection of its own, and closed at stop.

- ``async def`` tasks (and ``on_start``/``on_stop``) run on the process's asyncio loop through ``runtime.bridge``;
  the user's greenlet waits, so each user has one task in flight, like a sync task.
- Every task is bounded by ``--timeout``. A task that raises is counted: a failed store call or flow already is (its
  own row); anything else becomes a failed ``task`` row and Locust's ``user_error``; the user goes on either way.
- ``self.flow("name")``: one row for several steps (``loadgen.clients.flow``).
- ``layer`` picks the collection loadgen prepares once per run and ``self.collection`` names (``pymilvus``: the
  ``--collection``; ``langchain``/``llamaindex``: their ``_langchain``/``_llamaindex`` collections), so
  ``query_vector()``, ``query_text()`` and ``filter()`` fit the rows in it. ``existing_collection = "docs"`` uses a
  collection of yours instead: loadgen reads its schema and a sample (``loadgen.milvus.existing``), creates nothing,
  and refuses writes to it unless ``writable = True`` or ``--allow-foreign-collection``.
- ``--arrival-rate``: the store users' schedule (``loadgen.users.schedule``) sends the user's tasks (picked by
  weight) at its share of the rate, each send in a greenlet of its own (the ``greenlet`` driver's ``Sends``); the
  first request a send reports counts its latency from the intended send time. Tasks run in greenlets: the driver
  recorded for these classes is ``greenlet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.lock
import numpy as np
from locust import User, events
from locust.runners import WorkerRunner

from loadgen.clients.flow import Flow
from loadgen.clients.timed import (
    Handle,
    QueryVector,
    Reporter,
    Scoring,
    TaskState,
    current_task,
    was_reported,
)
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.locust import hooks
from loadgen.milvus import existing
from loadgen.runtime import bridge
from loadgen.stats.flows import FlowListener
from loadgen.stats.listeners import out_path
from loadgen.stats.timing import Sample
from loadgen.users import handles
from loadgen.users.drivers.greenlet import GreenletDriver, Sends
from loadgen.users.schedule import Plan, Schedule, share
from loadgen.workload import dataset_texts
from loadgen.workload.arrival_rate import paced_wait
from loadgen.workload.rows import CATEGORIES, WORDS

TASK_TYPE = "task"  # request type of a task that crashed outside any store call or flow (failures only)
_GUARD = handles.GUARD


@events.init.add_listener
def _attach_flow_stats(environment: Any, **_: Any) -> None:
    flows = FlowListener(environment, out_path=out_path(environment.parsed_options, "flows_file", "flows.json"))
    hooks.result_sections["flows"] = lambda: flows.results()["flows"]  # results.json's "flows"


@events.test_start.add_listener
def _check_existing_collections(environment: Any, **_: Any) -> None:
    """A collection of yours that is missing or not loaded stops the test with one line, before any user starts
    (on the master or local runner; workers read it again, once per process)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    names = {c.existing_collection for c in environment.user_classes or [] if getattr(c, "existing_collection", None)}
    try:
        for name in sorted(names):
            existing.info_for(hooks.settings_for(environment), name)
    except LoadgenError as exc:
        hooks.refuse_start(environment, exc)


def _passthrough(exc: BaseException) -> bool:
    """Locust's own control flow (StopUser, RescheduleTask, InterruptTaskSet ...) is not a task failure."""
    return type(exc).__module__.startswith("locust.")


def _paced(user: VectorStoreUser) -> None:
    """The open model: sends run in greenlets of their own; the user waits in Locust's wait (a stop ends it there)."""


class VectorStoreUser(User):
    abstract = True
    layer: str | None = "pymilvus"  # the loadgen collection to prepare and search; None: none
    existing_collection: str | None = None  # bring your own: this collection, read-only unless writable
    writable = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("existing_collection") and "layer" not in cls.__dict__:
            cls.layer = None  # nothing for loadgen to prepare
        for hook in ("on_start", "on_stop"):
            fn = cls.__dict__.get(hook)
            if fn is not None and not getattr(fn, "_loadgen_hook", False):
                setattr(cls, hook, _hook(hook, fn))

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.settings = hooks.settings_for(environment)
        self.reporter = Reporter(environment.events)
        self.timeout = self.settings.timeout
        self._rng = np.random.default_rng(self.settings.seed + (id(self) & 0xFFFF))
        self._pick = random.Random(self.settings.seed + id(self))
        wrapped: dict[Any, Any] = {}
        declared: list[Any] = list(type(self).tasks)  # functions, or TaskSet classes (left as they are)
        self._task_fns = [t for t in declared if not isinstance(t, type)]
        self.tasks = [t if isinstance(t, type) else wrapped.setdefault(t, _wrap(t)) for t in declared]
        if self.settings.arrival_rate:
            self.tasks = [_paced]
            self.wait_time = paced_wait  # type: ignore[method-assign]
        self._handles: dict[str, Any] = {}
        self._handle_lock = gevent.lock.RLock()
        self._started = False
        self._sends = Sends(self)
        self._info: existing.CollectionInfo | None = None
        self._workload: Any = None

    # ---- what the user's code uses ------------------------------------------------------------------------------
    @property
    def collection(self) -> str:
        if self.existing_collection:
            return self.existing_collection
        base = self.settings.collection
        return base if self.layer in (None, "pymilvus") else f"{base}_{self.layer}"

    def flow(self, name: str) -> Flow:
        """``with self.flow("rag") as steps:`` / ``async with``: one request row; ``steps.mark("retrieve")``."""
        return Flow(name, self.reporter, self.timeout)

    def query_vector(self) -> QueryVector:
        """A vector to search ``self.collection`` with: a ``--dataset`` query (its searches are scored for recall),
        a stored vector of your own collection with a little noise, or a random one of ``--dim``."""
        info = self._collection_info()
        if info is not None and info.sample_vectors:
            base = np.asarray(info.sample_vectors[self._pick.randrange(len(info.sample_vectors))])
            noisy = base + self._rng.normal(0.0, 0.01 * (float(np.abs(base).mean()) or 1.0), base.shape)
            return QueryVector(noisy.astype(np.float32).tolist())
        workload = self._dataset()
        if workload is not None:
            i = int(self._rng.integers(0, len(workload.queries)))
            vec = QueryVector(workload.queries[i].tolist())
            vec.query_index = i
            return vec
        dim = info.dim if info is not None else self.settings.dim
        return QueryVector(self._rng.standard_normal(dim).astype(np.float32).tolist())

    def query_vectors(self, n: int | None = None) -> list[QueryVector]:
        """``n`` query vectors (default ``--nq``) for one search of several: ``self.milvus.search(..., data=...)``
        scores each dataset query against its own truth and counts them all (query vectors per second)."""
        return [self.query_vector() for _ in range(self.settings.nq if n is None else n)]

    def query_text(self) -> str:
        """A text like the ones loadgen wrote into the LangChain and LlamaIndex collections; with ``--dataset``, the
        text of one of its queries (it embeds to the query's vector: searches with it are scored for recall)."""
        workload = self._dataset()
        if workload is not None:
            return dataset_texts.query_text(self._pick.randrange(len(workload.queries)))
        n = self._pick.randrange(max(self.settings.rows, 1))
        return f"{WORDS[n % len(WORDS)]} document {n}"

    def filter(self) -> str:
        """``--filter`` if given, else an expression that selects real rows of ``self.collection``."""
        if self.settings.filter:
            return self.settings.filter
        info = self._collection_info()
        if info is not None:
            return existing.filter_for(info, self._pick.choice)
        return f"category == {self._pick.randrange(CATEGORIES)}"

    @property
    def milvus(self) -> Any:
        return self._handle("milvus", lambda: handles.open_milvus(self))

    @property
    def amilvus(self) -> Any:
        return self._handle("amilvus", lambda: handles.open_amilvus(self))

    @property
    def langchain(self) -> Any:
        return self._handle("langchain", lambda: handles.open_langchain(self))

    @property
    def llamaindex(self) -> Any:
        return self._handle("llamaindex", lambda: handles.open_llamaindex(self))

    @property
    def embed_model(self) -> Any:
        """loadgen's ``--embedding`` as a llama-index embed model (what the LlamaIndex collection was filled with)."""
        from loadgen.workload.embeddings import embedder_for, llamaindex_embedding

        return llamaindex_embedding(embedder_for(self.settings))

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def on_start(self) -> None:
        self._begin()

    def on_stop(self) -> None:
        self._end()

    def _begin(self) -> None:
        if self._started:
            return
        self._started = True
        if self.existing_collection:
            self._collection_info()  # a missing or unloaded collection fails here, once, with its one line
        s = self.settings
        if hooks.state.drivers is not None:
            hooks.state.drivers.started(type(self).__name__, "", GreenletDriver.name)
        if s.arrival_rate:
            runner = self.environment.runner
            mine = share(s, runner.user_count if runner is not None else 1)
            plan = Plan(s.arrival_rate * mine, type(self).__name__, lambda: "")
            schedule = Schedule(plan, process=s.arrival_process, limit=s.max_in_flight, rng=self._pick,
                                deliver=lambda fn, *args: fn(*args))  # fmt: skip
            self._sends.start(schedule, self._sent_task)

    def _end(self) -> None:
        self._sends.stop(self.timeout + _GUARD)
        handles, self._handles = self._handles, {}
        for _, close in handles.values():
            with contextlib.suppress(Exception):  # a dead server must not hide the run's results
                close()

    # ---- tasks --------------------------------------------------------------------------------------------------
    def run_task(self, fn: Callable[..., Any], intended: float | None = None) -> None:
        """One task, sync or async, bounded by ``--timeout``; failures counted once (see the module docstring)."""
        state = TaskState(intended=intended, name=fn.__name__)
        token = current_task.set(state)
        start = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(fn):
                self.run_coroutine(fn(self), state)
            else:
                with gevent.Timeout(self.timeout, CallTimeout(f"task {state.name} ran past --timeout")):
                    fn(self)
        except Exception as exc:
            if _passthrough(exc):
                raise
            if was_reported(exc):
                return  # a failed store call or flow: already its own failed row
            elapsed = (time.perf_counter() - start) * 1000.0
            self.reporter(TASK_TYPE, state.name, Sample(None, elapsed, exc, 0.0, start), {})
            raise  # Locust logs it and fires user_error; the user goes on with its next task
        finally:
            current_task.reset(token)

    def run_coroutine(self, coro: Coroutine[Any, Any, Any], state: TaskState | None = None) -> Any:
        """Run ``coro`` on loadgen's loop, bounded by ``--timeout``; a stopped user cancels it there too."""
        state = state or TaskState(name=getattr(coro, "__name__", "coroutine"))
        timeout = self.timeout

        async def guarded() -> Any:
            current_task.set(state)
            task = asyncio.current_task()
            assert task is not None

            def expire() -> None:
                state.deadline_hit = True
                task.cancel()

            timer = asyncio.get_running_loop().call_later(timeout, expire)
            try:
                return await coro
            except asyncio.CancelledError:
                if not state.deadline_hit:
                    raise
                err = CallTimeout(f"task {state.name} ran past --timeout {timeout:g} s")
                if state.deadline_reported:  # a flow or store call already reported it as its failure
                    setattr(err, "_loadgen_reported", True)  # noqa: B010 - see timed.mark_reported
                raise err from None
            finally:
                timer.cancel()

        return bridge.run(guarded(), timeout + _GUARD)  # a killed greenlet cancels the coroutine there too

    # ---- the open model -----------------------------------------------------------------------------------------
    def _sent_task(self, intended: float) -> None:
        self.run_task(self._pick.choice(self._task_fns), intended)

    # ---- handles ------------------------------------------------------------------------------------------------
    def _handle(self, name: str, opener: Callable[[], tuple[Any, Callable[[], None]]]) -> Any:
        found = self._handles.get(name)
        if found is None:
            if handles.on_loop():
                found = self._handles[name] = opener()
            else:
                with self._handle_lock:  # open-model sends share one user: open each handle once
                    found = self._handles.get(name)
                    if found is None:
                        found = self._handles[name] = opener()
        return found[0]

    def _new_handle(self, layer: str, **kw: Any) -> Handle:
        read_only: frozenset[str] = frozenset()
        info = self._collection_info()
        if info is not None and not info.owned and not (self.writable or self.settings.allow_foreign_collection):
            read_only = frozenset({info.name} if kw.get("pymilvus") else {"*"})
        return Handle(layer, self.reporter, self.timeout, read_only=read_only, **kw)

    def _scoring(self) -> Scoring | None:
        workload = self._dataset()
        if workload is None or self.existing_collection:
            return None
        return Scoring(self.settings.collection, workload.truth, workload.k, self.settings.filter, workload.queries)

    def _collection_info(self) -> existing.CollectionInfo | None:
        if not self.existing_collection:
            return None
        if self._info is None:
            self._info = existing.info_for(self.settings, self.existing_collection)
        return self._info

    def _dataset(self) -> Any:
        if not self.settings.dataset or self.existing_collection:
            return None
        if self._workload is None:
            from loadgen.workload import truth

            self._workload = truth.workload_for(self.settings)
        return self._workload


def _wrap(fn: Callable[..., Any]) -> Callable[[VectorStoreUser], None]:
    def run(user: VectorStoreUser) -> None:
        user.run_task(fn)

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "task")
    run.__dict__.update(getattr(fn, "__dict__", {}))  # Locust's tags and weights
    return run


def _hook(which: str, fn: Callable[..., Any]) -> Callable[[VectorStoreUser], None]:
    """``on_start``/``on_stop``, sync or async, with loadgen's own start and stop around them."""

    def hook(user: VectorStoreUser) -> None:
        if which == "on_start":
            user._begin()
        try:
            if inspect.iscoroutinefunction(fn):
                user.run_coroutine(fn(user), TaskState(name=which))
            else:
                fn(user)
        finally:
            if which == "on_stop":
                user._end()

    hook.__name__ = which
    hook._loadgen_hook = True  # type: ignore[attr-defined]
    return hook


__all__ = ["VectorStoreUser"]
