"""LangChain: the layer's store keywords and, once per test on the master, its collection: validated, created
through the library (marked as loadgen's), filled and indexed, and dropped at the end when this run made it.

With ``--dataset`` the prefill is the dataset's base rows (pk ``"i"``, source ``dataset``): the ground truth of
its queries then holds for this collection too (``loadgen.workload.dataset_texts``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np
from pymilvus import MilvusClient, MilvusException

from loadgen.clients.lazy import lazy
from loadgen.config.settings import Settings
from loadgen.errors import CallTimeout
from loadgen.milvus import collection, held_rows, ownership, preparation, readiness
from loadgen.workload import dataset_texts, truth
from loadgen.workload.embeddings import embedder_for, langchain_embeddings
from loadgen.workload.rows import CATEGORIES, WORDS, dataset_categories

if TYPE_CHECKING:
    from langchain_milvus import Milvus
else:  # imported on first use (see loadgen.clients.lazy)
    Milvus = lazy("langchain_milvus", "Milvus")

FILL_BATCH = 500
FIELDS = ("pk", "text", "vector", "category", "source")
DATASET_SOURCE = "dataset"  # the ``source`` of a --dataset prefill's rows
# a --dataset prefill's rows: base row i has pk "i" (string keys: no "beyond n" filter; the vector sample checks)
KEYS = held_rows.Keys(pk="pk", vector="vector", prefilled=f'source == "{DATASET_SOURCE}"', key=str, beyond=None)


def collection_name(settings: Settings) -> str:
    return f"{settings.collection}_langchain"


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """A deadline for library calls that pass no ``timeout`` to pymilvus (get_pks, search_by_metadata, the
    constructor's checks). Under gevent the grpc wait is cooperative, so the timer can interrupt it."""
    with gevent.Timeout(seconds, CallTimeout(f"no answer within {seconds:g} s")):
        yield


class _NoLoopWarning(logging.Filter):
    """The constructor tries an AsyncMilvusClient, which needs a running loop; stores are built in a greenlet (none
    runs there, on purpose: see ``loadgen.clients.base``) and get theirs in ``_attach``. Its warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to initialize AsyncMilvusClient")


logging.getLogger("langchain_milvus.vectorstores.milvus").addFilter(_NoLoopWarning())


def store_kwargs(settings: Settings, alias: str | None) -> dict[str, Any]:
    conn = settings.client_kwargs(alias)  # uri, token, timeout and TLS options, passed on to pymilvus
    return {
        "embedding_function": langchain_embeddings(embedder_for(settings)),
        "collection_name": collection_name(settings),
        "connection_args": conn,
        "consistency_level": settings.consistency_level,
        "index_params": {
            "metric_type": settings.metric_type,
            "index_type": settings.index_type,
            "params": collection.index_params(settings),
        },
        "search_params": {"metric_type": settings.metric_type, "params": collection.search_params(settings)},
        "collection_description": collection.MARKER,  # used only when the library creates the collection
    }


LAYOUT = ownership.Layout("vector", FIELDS, "the LangChain layer", dynamic_ok=False)


def _count(client: MilvusClient, name: str, timeout: float) -> int:
    res = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=timeout)
    return int(res[0]["count(*)"]) if res else 0


def _fill(store: Milvus, settings: Settings, start: int, progress: bool) -> None:
    rng = np.random.default_rng(settings.seed)
    slow = max(settings.timeout, 60)
    name = collection_name(settings)
    with preparation.bar(name, settings.rows - start, enabled=progress) as bar:
        for first in range(start, settings.rows, FILL_BATCH):
            ids = [str(i) for i in range(first, min(first + FILL_BATCH, settings.rows))]
            texts = [f"{WORDS[int(i) % len(WORDS)]} document {i}" for i in ids]
            metas = [{"category": int(c), "source": "prefill"} for c in rng.integers(0, CATEGORIES, len(ids))]
            # the first batch creates the collection: the library then also creates the index and loads it,
            # without a deadline of its own, hence the timer around the whole call
            with bounded(slow):
                store.add_texts(texts, metas, timeout=slow, ids=ids)
            bar.update(len(ids))


def _fill_dataset(store: Milvus, settings: Settings, start: int, progress: bool) -> None:
    """The dataset's base rows from ``start`` on, as pk "i" with the text that stands for them and their vector."""
    workload = truth.workload_for(settings)
    slow = max(settings.timeout, 60)
    with preparation.bar(collection_name(settings), workload.dataset.count - start, enabled=progress) as bar:
        for first, vectors in workload.base_from(start, FILL_BATCH):
            ids = list(range(first, first + len(vectors)))
            metas = [{"category": int(c), "source": DATASET_SOURCE} for c in dataset_categories(ids, settings.seed)]
            with bounded(slow):  # the first batch creates the collection (and its index), as in _fill
                store.add_embeddings([dataset_texts.row_text(i) for i in ids], vectors.tolist(), metas,
                                     timeout=slow, ids=[str(i) for i in ids])  # fmt: skip
            bar.update(len(ids))


def _populate(client: MilvusClient, settings: Settings, c: ownership.Claim, *, progress: bool) -> tuple[int, int]:
    """Fill what this run may fill; (rows, truth_rows) after it."""
    name, t = collection_name(settings), settings.timeout
    # Not timeout=: with it set, the library's collection-creating insert passes timeout twice and fails with
    # "MilvusClient.insert() got multiple values for keyword argument 'timeout'"; _fill passes it per call.
    with bounded(max(t, 60)):
        store = Milvus(**store_kwargs(settings, client._using))  # shares the setup connection
    if settings.dataset:
        held, target, truth_rows = collection.dataset_fill_plan(client, settings, c, KEYS)
        if held < target:
            _fill_dataset(store, settings, held, progress)
            preparation.step(name, "flushing")
            client.flush(name, timeout=max(t, 120))
        return _count(client, name, t), truth_rows
    rows = 0 if c.create else _count(client, name, t)
    if not c.owned:
        return rows, 0
    if c.create and settings.rows == 0:  # the library creates the schema on the first insert only
        with bounded(max(t, 60)):
            store.add_texts(["schema"], [{"category": 0, "source": "prefill"}], timeout=t, ids=["schema"])
        client.delete(name, ids=["schema"], timeout=t)
    if rows < settings.rows:
        _fill(store, settings, rows, progress)
        preparation.step(name, "flushing")
        client.flush(name, timeout=max(t, 120))
    return _count(client, name, t), 0


def check(settings: Settings) -> None:
    """What ``prepare`` would refuse, read-only."""
    collection.check_claim(settings, collection_name(settings), LAYOUT, "LangChain collection")


def prepare(settings: Settings, *, progress: bool) -> collection.Prepared:
    """Validate, create (via the library, marked as loadgen's and this run's), fill ``<collection>_langchain`` and
    wait for its index; what may be created, written or reused is ``ownership.claim``'s decision."""
    collection.index_params(settings)  # validate before anything is created or dropped
    collection.search_params(settings)
    name, t = collection_name(settings), settings.timeout
    with collection.setup_client(settings, "LangChain collection", name) as client:
        version = str(client.get_server_version(timeout=t))
        c = ownership.claim(client, settings, name, LAYOUT)
        ownership.clear_for_create(client, settings, c)
        try:
            rows, truth_rows = _populate(client, settings, c, progress=progress)
            if c.create:  # the library made it (with our description) on the first insert
                ownership.stamp(client, settings, name)
            readiness.wait_until_indexed(client, settings, name, "vector", owned=c.owned)
        except (MilvusException, CallTimeout):
            if c.create and client.has_collection(name, timeout=t):  # ours, half made a moment ago
                client.drop_collection(name, timeout=t)
            raise
        return collection.Prepared(name, c.owned, c.create, rows, version, truth_rows)


def drop(settings: Settings) -> bool:
    """Drop ``<collection>_langchain`` if this run created it (see ``ownership``). Returns True if dropped."""
    return collection.release(settings, collection_name(settings)).dropped
