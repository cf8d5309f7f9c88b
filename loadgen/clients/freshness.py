"""Freshness: how long after a write (acknowledged by the server) a query at the run's consistency level sees it.

``probe`` / ``aprobe`` write one row (insert a new one, or delete the one the previous probe inserted), then query
its id until the answer shows the write, every ``POLL_S`` at most, for at most ``timeout`` seconds. The freshness
time runs from the write's acknowledgement to the end of the first query that saw it; the probe's request row (op
``freshness_probe``) times the whole sequence, and the freshness time is its own statistic
(``loadgen.stats.retrieval``), per write kind and consistency level, merged across workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadgen.errors import CallTimeout

POLL_S = 0.002  # pause between visibility queries: the probe's resolution, and its load on the server


@dataclass
class Seen:
    """Filled by a probe: what it wrote and when the write showed."""

    write: str = ""  # insert | delete
    id: int = -1
    freshness_ms: float | None = None
    polls: int = 0


def _visible(rows: Any, write: str) -> bool:
    return bool(rows) if write == "insert" else not rows


def _query_kwargs(st: Any, row_id: int) -> dict[str, Any]:
    return {
        "filter": f"id == {row_id}",
        "output_fields": ["id"],
        "consistency_level": st.s.consistency_level,
        "timeout": st.s.timeout,
    }


def _next_write(st: Any) -> tuple[str, int, list[dict[str, Any]]]:
    """Alternate: insert a fresh row, then delete it (so probes leave no rows behind)."""
    if st.probe_ids:
        return "delete", st.probe_ids.pop(), []
    row_id = st.new_id()
    return "insert", row_id, [st.new_row(row_id)]


def probe(st: Any, seen: Seen, after_write: Callable[[], None] | None = None) -> int:
    write, row_id, rows = _next_write(st)
    seen.write, seen.id = write, row_id
    c, name = st.client, st.name
    if write == "insert":
        c.insert(name, rows, timeout=st.s.timeout)
    else:
        c.delete(name, ids=[row_id], timeout=st.s.timeout)
    acked = time.perf_counter()
    if after_write is not None:
        after_write()
    deadline = acked + st.s.timeout
    while True:
        found = c.query(name, **_query_kwargs(st, row_id))
        seen.polls += 1
        if _visible(found, write):
            seen.freshness_ms = (time.perf_counter() - acked) * 1000.0
            break
        if time.perf_counter() > deadline:
            raise CallTimeout(f"{write} of id {row_id} not visible within {st.s.timeout:g} s")
        time.sleep(POLL_S)  # gevent-patched under Locust: other users run meanwhile
    if write == "insert":
        st.probe_ids.append(row_id)
    return 1


async def aprobe(st: Any, seen: Seen) -> int:
    write, row_id, rows = _next_write(st)
    seen.write, seen.id = write, row_id
    c, name = st.client, st.name
    if write == "insert":
        await c.insert(name, rows, timeout=st.s.timeout)
    else:
        await c.delete(name, ids=[row_id], timeout=st.s.timeout)
    acked = time.perf_counter()
    deadline = acked + st.s.timeout
    while True:
        found = await c.query(name, **_query_kwargs(st, row_id))
        seen.polls += 1
        if _visible(found, write):
            seen.freshness_ms = (time.perf_counter() - acked) * 1000.0
            break
        if time.perf_counter() > deadline:
            raise CallTimeout(f"{write} of id {row_id} not visible within {st.s.timeout:g} s")
        await asyncio.sleep(POLL_S)
    if write == "insert":
        st.probe_ids.append(row_id)
    return 1
