"""What every client-library adapter is: a table of ``Operation`` records, plus how to open and close its store and
prepare and drop its collection. Nothing here times a call or knows Locust (``loadgen.users`` and
``loadgen.stats.timing`` do).

An operation is one record: its name (the library's sync method name, also the ``--weights`` key), default weight,
whether it reads or writes, how its inputs are made (untimed), the sync call and the async call (one library call
each: that is what a request row measures), what came back (untimed, after the call; it may raise, which makes the
call a failure) and any bookkeeping. ``--weights``, the web UI's rows, ``compare``'s experiments, sizing's reads and
writes and the sync/async twins all derive from these tables. Adding an operation is one record in one table.

A store is the adapter's per-user state (its clients, row factories, the ids it wrote). ``open`` builds it on a
thread pool of loadgen's own (``runtime.off_hub``: a library's sync constructor may block its OS thread while it
connects, so neither the gevent hub nor the asyncio loop waits for it); an async user's store is then bound to
loadgen's asyncio loop by ``attach``, which only creates async clients and awaits their bounded handshakes, so no
sync call ever runs on the loop thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loadgen.milvus.collection import Prepared

Kind = Literal["read", "write"]
Rows = list[dict[str, Any]]
Vectors = list[list[float]]


class Skip(Exception):
    """Raised by an operation's ``inputs`` when there is nothing it may do yet (a delete before the user has rows of
    its own): no call is made and no request row is reported; the user counts it."""


@dataclass(frozen=True)
class Outcome:
    """What one successful call gave back: rows written or read, or hits (Locust's ``response_length``), and the
    recall@k of a search scored against a dataset's ground truth (None when there is nothing to score)."""

    length: int
    # one value per query vector that is a dataset query (``--nq``: each against its own truth); a bare float is one
    recall: float | list[float] | None = None
    # values for other merged statistics, put in the request's context (the retrieval layer's relevance, first
    # pages, tenant buckets, freshness: loadgen.stats.retrieval)
    extra: Mapping[str, Any] | None = None
    # the answer's size in bytes, where it is measured (``loadgen.clients.shape``); None: not measured
    response_bytes: int | None = None


def counted(_store: Any, _inputs: tuple[Any, ...], result: Any) -> Outcome:
    """The default outcome: how many items the library returned."""
    return Outcome(len(result) if result is not None else 0)


@dataclass(frozen=True)
class FollowUp:
    """A further store call a task makes after its operation's call succeeded (a freshness probe's visibility
    queries after its write): operation ``op`` of the same table with ``inputs``, made ``pause`` seconds later. It is
    a call like any other: its own request row, its own outcome, and possibly a follow-up of its own."""

    op: str
    inputs: tuple[Any, ...]
    pause: float = 0.0


@dataclass(frozen=True)
class Operation:
    name: str  # the library's sync method name: "similarity_search"; the --weights key
    weight: int  # default task weight
    kind: Kind
    inputs: Callable[[Any], tuple[Any, ...]]  # (store) -> what one call gets; untimed
    call: Callable[..., Any]  # (store, *inputs) -> the library's result; the timed span
    acall: Callable[..., Awaitable[Any]] | None = None  # async twin; None: ``call`` returns an awaitable itself
    outcome: Callable[[Any, tuple[Any, ...], Any], Outcome] = counted  # untimed, after a call that returned
    done: Callable[[Any, tuple[Any, ...], bool], None] | None = None  # bookkeeping (e.g. ids written), ok or not
    label: str = ""  # request name of the sync call, when it is not ``name`` ("delete[expr]")
    async_label: str = ""  # request name of the async call; default "a" + label
    search: bool = False  # the layer's search: what fan-out gathers and what recall scores
    needs: str = ""  # lowest server version that serves it, e.g. "2.5.0"; "" for every supported version
    # the Milvus proxy function one call lands on (``function_name`` of ``milvus_proxy_req_count``): what the run's
    # server section and the report set beside the row; "" when a call is not one server call of one kind
    server: str = ""
    # untimed, after a call that succeeded (and its outcome): the next call of this task, if any
    follow: Callable[[Any, tuple[Any, ...]], FollowUp | None] | None = None
    # (store, inputs) -> query vectors in one call (``--nq``), for a search that counts them; None: not counted
    queries: Callable[[Any, tuple[Any, ...]], int] | None = None

    def request_name(self, use_async: bool) -> str:
        label = self.label or self.name
        return (self.async_label or "a" + label) if use_async else label

    def async_call(self, store: Any, *inputs: Any) -> Awaitable[Any]:
        return (self.acall or self.call)(store, *inputs)


def follow_up(
    ops: Mapping[str, Operation], store: Any, op: Operation, inputs: tuple[Any, ...]
) -> tuple[Operation, tuple[Any, ...], float] | None:
    """After ``op``'s call succeeded and was settled: the task's next call (operation, inputs, pause before it), or
    None when the task is done."""
    nxt = op.follow(store, inputs) if op.follow is not None else None
    return None if nxt is None else (ops[nxt.op], nxt.inputs, nxt.pause)


def chain(
    ops: Mapping[str, Operation], store: Any, op: Operation, inputs: tuple[Any, ...]
) -> Iterator[tuple[Operation, tuple[Any, ...], float]]:
    """The calls one task makes, each (operation, inputs, pause before it): ``op`` itself, then its follow-ups. The
    caller makes each call, settles its outcome, and stops iterating when one fails; the next follow-up is asked for
    only after that, so it sees what the previous call showed."""
    step: tuple[Operation, tuple[Any, ...], float] | None = (op, inputs, 0.0)
    while step is not None:
        yield step
        step = follow_up(ops, store, step[0], step[1])


def table(*operations: Operation) -> dict[str, Operation]:
    ops = {op.name: op for op in operations}
    if len(ops) != len(operations):
        raise ValueError("operation names must be unique in a table")
    return ops


@dataclass(frozen=True)
class Adapter:
    """One client library: its operations and its store's life cycle."""

    layer: str
    operations: Mapping[str, Operation]
    open: Callable[[Any, bool], Any]  # (settings, use_async) -> store; on loadgen's setup threads
    close: Callable[[Any], None]  # sync store
    attach: Callable[[Any], Coroutine[Any, Any, None]]  # async store, on the loop: async clients, bounded handshake
    aclose: Callable[[Any], Coroutine[Any, Any, None]]  # async store, on the loop
    prepare: Callable[..., Prepared]  # (settings, *, progress) -> milvus.collection.Prepared; master only
    drop: Callable[[Any], bool]  # (settings) -> dropped?
    # the library modules a store needs, imported at Locust's init (``clients.preload``), never in a user's greenlet:
    # an import takes seconds and holds the gevent hub (and every user's timers) meanwhile
    libraries: tuple[str, ...] = ()
    # what the layer itself needs of the server beyond its operations (a schema with a BM25 function): (what, version)
    needs: tuple[tuple[str, str], ...] = ()
    # (settings) -> None: what ``prepare`` would refuse, found read-only (the web UI's start form asks before it
    # starts anything); raises a one-line LoadgenError. Layers without one are checked by ``prepare`` itself.
    check: Callable[[Any], object] = lambda _settings: None
    # its search takes --nq query vectors and an --output-fields profile, and measures its answers' bytes
    request_shape: bool = False

    @property
    def search(self) -> Operation:
        return next(op for op in self.operations.values() if op.search)
