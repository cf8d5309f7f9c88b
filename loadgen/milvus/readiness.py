"""Before the load starts: the vector index covers every row, and the segments searches run on are the indexed ones.

What Milvus 2.3.5 does (measured, 20,000 x 64 HNSW, filled in batches then flushed): ``describe_index`` reports
``indexed_rows`` 0 of ``total_rows`` 20,000 (``pending_index_rows`` 20,000) for about 2 s after the flush, then
20,000 of 20,000. But the query node keeps answering from the rows it received while they were inserted (not
indexed: brute force, recall 1.000) until the query coordinator hands the indexed segment over, about 17 s later;
only then does ``list_loaded_segments`` list the flushed segment, and recall falls to the index's own (0.858 at
ef 100). Segments under 1,024 rows get no index and count as indexed at once. So a run waits for both: the index
build, then the hand-over, which a release and load of a collection loadgen owns does at once (a user's collection
is never released: then the run waits for the server's own hand-over). VectorDBBench also waits for the index, then
loads.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pymilvus import MilvusClient

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import preparation

log = logging.getLogger("loadgen")
POLL_SECONDS = 0.5
MIN_WAIT_SECONDS = 300.0  # an index build of a large collection takes minutes; --timeout bounds single calls only
GROWING = 2  # common_pb2.SegmentState.Growing: rows served without an index


def _index_name(client: MilvusClient, name: str, vector_field: str, timeout: float) -> str | None:
    names = client.list_indexes(name, field_name=vector_field, timeout=timeout)
    return str(names[0]) if names else None


def _unindexed(client: MilvusClient, name: str, index: str, timeout: float) -> tuple[int, int, str]:
    """(rows not yet indexed, rows the index must cover, the index type)."""
    d = client.describe_index(name, index, timeout=timeout)
    if str(d.get("state", "")) == "Failed":
        raise LoadgenError(f"Milvus failed to build the index of {name!r}: {d.get('index_state_fail_reason', '')}")
    total = int(d.get("total_rows", 0))
    pending = int(d.get("pending_index_rows", 0))
    return max(total - int(d.get("indexed_rows", 0)), pending), total, str(d.get("index_type", ""))


def _not_loaded(client: MilvusClient, name: str, timeout: float) -> set[int]:
    """Flushed segments the query nodes do not serve from their sealed (indexed) copy yet."""
    flushed = {s.segment_id for s in client.list_persistent_segments(name, timeout=timeout) if s.num_rows}
    loaded = {s.segment_id for s in client.list_loaded_segments(name, timeout=timeout) if int(s.state) != GROWING}
    return flushed - loaded


def _late(owned: bool, what: str) -> dict[str, Any]:
    """Ours: an error (the run would measure something else than it says). A user's: a warning, and the run goes
    on (its state is the user's to keep; loadgen only says what the first searches may measure)."""
    if owned:
        raise LoadgenError(what)
    log.warning("%s: the first searches may not run on the index", what)
    return {"index": None, "rows": 0, "reloaded": False, "seconds": 0.0, "late": True}


def wait_until_indexed(
    client: MilvusClient, settings: Settings, name: str, vector_field: str, *, owned: bool
) -> dict[str, Any]:
    """Flush (loadgen's collection only), wait for the index to cover every flushed row, then make the loaded
    segments the indexed ones (release and load loadgen's collection; wait for the server on a user's). Logs one
    line; returns what it saw (for tests)."""
    t, started = settings.timeout, time.perf_counter()
    deadline = started + max(MIN_WAIT_SECONDS, settings.timeout)
    preparation.step(name, "flushing and indexing")
    if owned:  # rows still in growing segments get no index until sealed
        client.flush(name, timeout=max(t, 120))
    index = _index_name(client, name, vector_field, t)
    if index is None:
        return {"index": None, "rows": 0, "reloaded": False, "seconds": 0.0}
    waiting = preparation.step(name, "waiting for the index of", unit="rows indexed")
    while True:
        left, total, kind = _unindexed(client, name, index, t)
        waiting.total, waiting.done = total, max(total - left, 0)
        if left <= 0:
            break
        if time.perf_counter() > deadline:
            return _late(owned, f"the {kind} index of {name!r} still lacks {left} of {total} rows after the wait")
        time.sleep(POLL_SECONDS)  # gevent-cooperative on the master: the hub keeps going
    reloaded = False
    preparation.step(name, "loading the indexed segments of")
    while _not_loaded(client, name, t):
        if owned and not reloaded:  # ours: load the indexed segments now, not at the server's next hand-over
            client.release_collection(name, timeout=t)
            client.load_collection(name, timeout=max(t, 60))
            reloaded = True
            continue
        if time.perf_counter() > deadline:
            return _late(owned, f"the indexed segments of {name!r} were not all loaded within the wait")
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    how = "; indexed segments loaded" + (" (released and loaded again)" if reloaded else "")
    log.info("waiting for the %s index of %s to cover %d rows ... done in %.1f s%s", kind, name, total, seconds, how)
    return {"index": kind, "rows": total, "reloaded": reloaded, "seconds": seconds}
