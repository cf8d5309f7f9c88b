"""Freshness: how long after a write (acknowledged by the server) a query at the run's consistency level sees it.

A probe is two operations (``operations()``, in the retrieval table and the fake store's), each call its own request
row (``loadgen.clients.base``):

- ``freshness_probe``: the write, one store call: insert a new row, or delete the one the previous probe inserted
  (so probes leave no rows behind). The call stamps the moment the server acknowledged it.
- ``freshness_query`` (row ``query[freshness]``): one query of the written id, asked for as the write's follow-up
  and again every ``POLL_S`` until its answer shows the write, for at most ``--timeout`` after the acknowledgement.

The freshness time (acknowledgement -> end of the first query that saw the write) is in no row's time: it rides in
the context of the query that saw it (``freshness_ms``, ``write``) into its own statistic (``loadgen.stats.retrieval``,
per write kind and consistency level, merged across workers), as relevance rides on a search. A write still unseen
at the deadline is counted there as unseen (``freshness_unseen``); the queries themselves succeeded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from loadgen.clients.base import FollowUp, Operation, Outcome, Skip

POLL_S = 0.002  # pause between visibility queries: the probe's resolution, and its load on the server
QUERY = "freshness_query"


@dataclass
class Seen:
    """One probe's write and what the queries after it saw (filled by the calls and their outcomes)."""

    write: str = ""  # insert | delete
    id: int = -1
    rows: list[dict[str, Any]] = field(default_factory=list)  # what an insert writes
    acked: float | None = None  # perf_counter() when the write returned
    answered: float = 0.0  # perf_counter() when the latest query returned
    polls: int = 0
    freshness_ms: float | None = None
    unseen: bool = False  # still invisible --timeout after the acknowledgement


def _visible(rows: Any, write: str) -> bool:
    return bool(rows) if write == "insert" else not rows


def _query_kwargs(st: Any, row_id: int) -> dict[str, Any]:
    return {
        "filter": f"id == {row_id}",
        "output_fields": ["id"],
        "consistency_level": st.settings.consistency_level,
        "timeout": st.settings.timeout,
    }


# ---- the write ---------------------------------------------------------------------------------------------------


def write_inputs(st: Any) -> tuple[Seen]:
    """Untimed: alternate, insert a fresh row, then delete it."""
    if st.probe_ids:
        return (Seen("delete", st.probe_ids.pop()),)
    row_id = st.new_id()
    return (Seen("insert", row_id, [st.new_row(row_id)]),)


def write(st: Any, seen: Seen) -> int:
    if seen.write == "insert":
        st.client.insert(st.name, seen.rows, timeout=st.settings.timeout)
    else:
        st.client.delete(st.name, ids=[seen.id], timeout=st.settings.timeout)
    seen.acked = time.perf_counter()
    return 1


async def awrite(st: Any, seen: Seen) -> int:
    if seen.write == "insert":
        await st.client.insert(st.name, seen.rows, timeout=st.settings.timeout)
    else:
        await st.client.delete(st.name, ids=[seen.id], timeout=st.settings.timeout)
    seen.acked = time.perf_counter()  # on the loop, as the call returns: the hand-off back is not counted
    return 1


def written(st: Any, inputs: tuple[Any, ...], ok: bool) -> None:
    """Bookkeeping: an inserted row is the next probe's to delete; a delete that failed is tried again."""
    seen: Seen = inputs[0]
    if (seen.write == "insert") == ok:
        st.probe_ids.append(seen.id)


def first_query(st: Any, inputs: tuple[Any, ...]) -> FollowUp:
    return FollowUp(QUERY, inputs)  # right after the acknowledgement


# ---- the visibility queries ----------------------------------------------------------------------------------------


def query_inputs(st: Any) -> tuple[Seen]:
    """As a task of its own (weight 0 by default): read this user's newest probe row; no freshness is measured."""
    if not st.probe_ids:
        raise Skip("no probe row of this user's yet")
    return (Seen("insert", st.probe_ids[-1]),)


def query(st: Any, seen: Seen) -> list[Any]:
    found = list(st.client.query(st.name, **_query_kwargs(st, seen.id)))
    seen.answered = time.perf_counter()
    return found


async def aquery(st: Any, seen: Seen) -> list[Any]:
    found = list(await st.client.query(st.name, **_query_kwargs(st, seen.id)))
    seen.answered = time.perf_counter()
    return found


def query_outcome(st: Any, inputs: tuple[Any, ...], found: list[Any]) -> Outcome:
    """Untimed: whether this query is the first to see the write (its context then carries the freshness time),
    or the deadline passed without one."""
    seen: Seen = inputs[0]
    seen.polls += 1
    extra: dict[str, Any] = {}
    if seen.acked is not None and seen.freshness_ms is None and not seen.unseen:
        if _visible(found, seen.write):
            seen.freshness_ms = (seen.answered - seen.acked) * 1000.0
            extra = {"freshness_ms": seen.freshness_ms, "write": seen.write}
        elif seen.answered - seen.acked > st.settings.timeout:
            seen.unseen = True
            extra = {"freshness_unseen": 1, "write": seen.write}
    return Outcome(len(found), extra=extra)


def next_query(st: Any, inputs: tuple[Any, ...]) -> FollowUp | None:
    seen: Seen = inputs[0]
    if seen.acked is None or seen.freshness_ms is not None or seen.unseen:
        return None
    return FollowUp(QUERY, inputs, POLL_S)


def write_outcome(st: Any, inputs: tuple[Any, ...], n: int) -> Outcome:
    return Outcome(int(n), extra={"write": inputs[0].write})


def operations(weight: int = 1) -> tuple[Operation, Operation]:
    """The two records of a store whose ``client`` has ``insert``/``delete``/``query`` (sync, or async for async
    users) on its collection ``name``, ``probe_ids``, ``new_id()`` and ``new_row(id)``."""
    return (
        Operation("freshness_probe", weight, "write", write_inputs, write, awrite, outcome=write_outcome,
                  done=written, async_label="freshness_probe", follow=first_query),
        Operation(QUERY, 0, "read", query_inputs, query, aquery, outcome=query_outcome, label="query[freshness]",
                  async_label="query[freshness]", follow=next_query, server="Query"),
    )  # fmt: skip
