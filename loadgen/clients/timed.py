"""Timed handles for your own locustfiles: every method called through them is measured and reported.

``instrument(obj, ...)`` replaces the public methods of one client object (a pymilvus ``MilvusClient`` or
``AsyncMilvusClient``, a langchain-milvus ``Milvus``, a llama-index ``MilvusVectorStore``) *on that instance* with
timed wrappers. The object keeps its class, so frameworks that check it (a LangChain retriever, a LlamaIndex
``VectorStoreIndex`` and its query engine) take it and their calls into the store are timed too. Each call becomes one
Locust request row: request type ``<layer>`` or ``<layer>-async`` (a coroutine method), name = the method's name,
time measured with ``perf_counter`` by ``loadgen.stats.timing`` (async calls on the event loop itself).

- A call nested in another timed call (a library method calling its own public twin) is not reported twice.
- Deadlines: pymilvus calls get ``timeout=--timeout`` unless the caller passed one; every call is bounded by
  ``--timeout`` (``gevent.Timeout`` in a greenlet, ``asyncio.timeout`` on the loop).
- A failed call is reported with the server's text (``timing.ReportedError``) and re-raised to the caller, marked
  as reported (``was_reported``) so the task runner does not count it a second time.
- Recall: with ``--dataset``, a search that runs one of its queries on a collection holding its rows is scored
  against the ground truth (``context["recall"]``): which ones, per layer, in ``loadgen.clients.timed_recall``.
- Shape: a pymilvus ``search`` reports its query vectors (``context["nq"]``) and its answer's size in bytes
  (``context["response_bytes"]``, measured as ``loadgen.clients.shape`` says).
- Read-only collections: a write method aimed at one raises ``ReadOnlyCollectionError`` before anything is sent.
Reports made on the asyncio thread are handed to the gevent hub, which owns Locust's statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gevent

from loadgen.clients import shape
from loadgen.clients.timed_recall import RECALL, Scoring
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.stats import tracing
from loadgen.stats.timing import Sample, ameasure, measure, report

# what is instrumented, per layer (everything else on the object is left as it is)
# local helpers, iterators (their calls happen later), connection bookkeeping
_PYMILVUS_SKIP = frozenset(
    {"close", "create_schema", "create_field_schema", "create_struct_field_schema", "prepare_index_params",
     "search_iterator", "query_iterator", "use_database", "using_database"}
)  # fmt: skip
PYMILVUS_WRITES = frozenset(
    {"insert", "upsert", "delete", "drop_collection", "truncate_collection", "rename_collection", "create_index",
     "drop_index", "flush", "compact", "create_partition", "drop_partition", "alter_collection_properties",
     "drop_collection_properties", "alter_collection_field", "add_collection_field", "release_collection",
     "release_partitions", "alter_index_properties", "drop_index_properties", "create_alias", "alter_alias"}
)  # fmt: skip
_LC_SYNC = (
    "similarity_search", "similarity_search_by_vector", "similarity_search_with_score",
    "similarity_search_with_score_by_vector", "similarity_search_with_relevance_scores",
    "max_marginal_relevance_search", "max_marginal_relevance_search_by_vector", "search", "search_by_metadata",
    "get_by_ids", "get_pks", "add_texts", "add_documents", "add_embeddings", "upsert", "delete",
)  # fmt: skip
LANGCHAIN_METHODS = frozenset(_LC_SYNC) | {"a" + m for m in _LC_SYNC}
LANGCHAIN_WRITES = frozenset(m for m in LANGCHAIN_METHODS if m.lstrip("a").startswith(("add_", "upsert", "delete")))
LLAMAINDEX_METHODS = frozenset(
    {"add", "async_add", "query", "aquery", "delete", "adelete", "delete_nodes", "adelete_nodes", "get_nodes",
     "aget_nodes", "clear", "aclear"}
)  # fmt: skip
LLAMAINDEX_WRITES = frozenset({"add", "async_add", "delete", "adelete", "delete_nodes", "adelete_nodes", "clear"}) | {
    "aclear"
}

_REPORTED = "_loadgen_reported"
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("loadgen_timed_inside", default=False)


class ReadOnlyCollectionError(LoadgenError):
    """A write aimed at a collection the user class may only read."""


class QueryVector(list[float]):
    """A query vector that knows which ``--dataset`` query it is (``query_index``), so a search of it is scored."""

    query_index: int | None = None


def mark_reported(exc: BaseException) -> BaseException:
    # an exception type without a __dict__ cannot be marked: it is then counted once more, as a task failure
    with contextlib.suppress(AttributeError):
        setattr(exc, _REPORTED, True)
    return exc


def was_reported(exc: BaseException) -> bool:
    return bool(getattr(exc, _REPORTED, False))


@dataclass
class TaskState:
    """The task (or open-model send) a call belongs to: its intended send time, consumed by the first request it
    reports (latency counts from the schedule, not from when the generator got round to it), and whether its
    deadline cancelled it."""

    intended: float | None = None
    deadline_hit: bool = False
    deadline_reported: bool = False  # a flow or call already reported the deadline as its failure
    name: str = ""

    def take_intended(self) -> float | None:
        intended, self.intended = self.intended, None
        return intended


current_task: contextvars.ContextVar[TaskState | None] = contextvars.ContextVar("loadgen_task", default=None)


@dataclass
class Reporter:
    """Fires Locust request events on the gevent hub's thread (Locust's statistics are not thread-safe)."""

    events: Any
    hub_loop: Any = field(default_factory=lambda: gevent.get_hub().loop)

    def __call__(self, request_type: str, name: str, sample: Sample, context: dict[str, Any], length: int = 0) -> None:
        state = current_task.get()
        intended = state.take_intended() if state is not None else None

        def fire() -> None:
            report(self.events, request_type, name, sample, length=length, context=context, intended=intended)

        if threading.current_thread() is threading.main_thread():
            fire()
        else:  # the asyncio thread: queued in order, run by the hub before the waiting greenlet wakes up
            self.hub_loop.run_callback_threadsafe(fire)


@dataclass
class Handle:
    """How one instrumented object reports: its layer, deadline, read-only collections and recall scoring."""

    layer: str
    reporter: Reporter
    timeout: float
    writes: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()  # collection names; "*": every collection this handle touches
    pymilvus: bool = False  # pymilvus methods take collection_name first and a timeout keyword
    scoring: Scoring | None = None
    warm_up: Callable[[], Awaitable[Any]] | None = None  # untimed, before the first async call (the handshake)
    warmed: bool = False
    client: Any = None  # a pymilvus client whose Search answers are measured (``shape.capture_client``)

    def check_write(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if method not in self.writes or not self.read_only:
            return
        target = str(kwargs.get("collection_name") or (args[0] if args else "")) if self.pymilvus else "*"
        if "*" in self.read_only or target in self.read_only:
            what = f"collection {target!r}" if target != "*" else "its collection"
            raise ReadOnlyCollectionError(
                f"{self.layer} {method}: {what} is read-only for this user; set writable = True on the user "
                "class (or pass --allow-foreign-collection) to allow writes"
            )

    def settle(self, row: tuple[str, str], args: tuple[Any, ...], kwargs: dict[str, Any], sample: Sample) -> Any:
        """Report one timed call as ``row`` (type, name), with its recall and length; hand back its value, or raise
        its error marked as reported."""
        self.reporter(row[0], row[1], sample, self.context(row[1], args, kwargs, sample), length_of(sample.value))
        if sample.error is not None:
            raise mark_reported(sample.error)
        return sample.value

    def context(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], sample: Sample) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        if self.pymilvus:
            ctx["collection"] = kwargs.get("collection_name") or (args[0] if args else None)
        scorer = RECALL.get(self.layer)
        if self.scoring is not None and scorer is not None and sample.error is None:
            recall = scorer(self.scoring, method, args, kwargs, sample.value)
            if recall is not None:
                ctx["recall"] = recall
        if self.pymilvus and method == "search":  # the shape: query vectors, and the answer's bytes when kept
            data = kwargs.get("data", args[1] if len(args) > 1 else None)
            if isinstance(data, list):
                ctx["nq"] = len(data)
            if sample.error is None and (size := shape.response_bytes(shape.taken())) is not None:
                ctx["response_bytes"] = size
        return ctx


def length_of(out: Any) -> int:  # noqa: PLR0911 - one return per kind of result
    """How much came back: rows written (pymilvus counts), hits of every query, documents, nodes, ids."""
    if out is None or isinstance(out, bool):
        return 0
    if isinstance(out, int):
        return out
    if isinstance(out, dict):
        for key in ("insert_count", "upsert_count", "delete_count"):
            if key in out:
                return int(out[key])
        return len(out)
    ids = getattr(out, "ids", None)  # llama-index VectorStoreQueryResult
    if ids is not None and not isinstance(out, list | tuple):
        return len(ids)
    try:
        items = list(out)
    except TypeError:
        return 1
    if items and all(isinstance(x, list | tuple) or type(x).__name__ == "Hits" for x in items):
        return sum(len(x) for x in items)  # a search: hits per query
    return len(items)


def _with_timeout(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    if "timeout" in kwargs:
        return kwargs
    return {**kwargs, "timeout": timeout}


def _sync_wrapper(handle: Handle, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    request_type = handle.layer

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return fn(*args, **kwargs)
        handle.check_write(name, args, kwargs)
        if handle.pymilvus:
            kwargs = _with_timeout(fn, kwargs, handle.timeout)
        token = _inside.set(True)
        shape.forget()  # a search's answer is kept by its captured stub (``shape.capture_client``)
        try:
            call = functools.partial(fn, *args, **kwargs)
            if tracing.enabled():  # --otel: the call inside a client span
                call = functools.partial(tracing.timed_call, handle.layer, name, call)
            if threading.current_thread() is threading.main_thread():  # a greenlet: grpc waits cooperatively
                with gevent.Timeout(handle.timeout, CallTimeout(f"no answer within {handle.timeout:g} s")):
                    sample = measure(call)
            else:
                sample = measure(call)
        finally:
            _inside.reset(token)
        return handle.settle((request_type, name), args, kwargs, sample)

    return timed


def _async_wrapper(handle: Handle, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    request_type = handle.layer + "-async"

    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await fn(*args, **kwargs)
        handle.check_write(name, args, kwargs)
        if handle.pymilvus:
            kwargs = _with_timeout(fn, kwargs, handle.timeout)
        if not handle.warmed and handle.warm_up is not None:  # the connection handshake: untimed, bounded
            handle.warmed = True
            await asyncio.wait_for(handle.warm_up(), handle.timeout)
            if handle.pymilvus:  # the handshake made the client's stub anew: keep its Search answers from now on
                shape.capture_client(handle.client, True)
        token = _inside.set(True)
        shape.forget()
        try:
            if tracing.enabled():  # --otel: the call inside a client span
                sample = await ameasure(lambda: tracing.timed_acall(request_type, name, lambda: fn(*args, **kwargs)),
                                        handle.timeout)  # fmt: skip
            else:
                sample = await ameasure(lambda: fn(*args, **kwargs), handle.timeout)
        except asyncio.CancelledError:
            state = current_task.get()
            if state is not None and state.deadline_hit:  # the task's deadline, not the user stopping
                state.deadline_reported = True
                err = CallTimeout(f"task {state.name} ran past --timeout {handle.timeout:g} s")
                handle.reporter(request_type, name, Sample(None, handle.timeout * 1000.0, err), {})
            raise
        finally:
            _inside.reset(token)
        return handle.settle((request_type, name), args, kwargs, sample)

    return timed


def instrument(obj: Any, handle: Handle, methods: Iterable[str] | None = None) -> Any:
    """Replace ``methods`` of ``obj`` (default: every public method, for pymilvus clients) with timed wrappers."""
    if methods is None:
        methods = [m for m in dir(type(obj)) if not m.startswith("_") and m not in _PYMILVUS_SKIP]
    for name in methods:
        fn = getattr(obj, name, None)
        if fn is None or not callable(fn) or isinstance(inspect.getattr_static(obj, name), classmethod | staticmethod):
            continue
        is_async = inspect.iscoroutinefunction(fn)
        wrapper = _async_wrapper(handle, name, fn) if is_async else _sync_wrapper(handle, name, fn)
        object.__setattr__(obj, name, wrapper)  # bypasses pydantic's __setattr__ (MilvusVectorStore is a model)
    return obj
