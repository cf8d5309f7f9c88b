"""With ``--dataset``: which of the dataset's rows a collection holds, so the ground truth matches the collection.

A ``--dataset`` prefill inserts base vector i as id i; rows users insert during a run have ids from ``RUN_IDS_FROM``
up (``RowFactory.new_ids``). A reused collection may hold another number of dataset rows than ``--rows`` selects
(20,000 kept by an earlier run, 10,000 selected now): scoring its searches against the truth of the first 10,000
rows reads recall 0.503 where it is 0.923. So the run counts the dataset rows the collection holds; when they are
ids 0..n-1 and a sample of their vectors equals the dataset's first n rows, the ground truth is computed over those
n rows (``Settings.truth_rows``); otherwise the run refuses, with one line, before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.workload import truth

RUN_IDS_FROM = 2**40  # rows inserted during a run (RowFactory.new_ids) have ids from here up
SAMPLE = 64  # ids whose vectors are compared with the dataset's


@dataclass(frozen=True)
class Keys:
    """How a layer's collection stores the dataset's row i: its primary key and vector field, the filter that
    counts the prefilled rows, and (int keys only) the filter that finds a prefilled key at or beyond n."""

    pk: str = "id"
    vector: str = "vector"
    prefilled: str = f"id < {RUN_IDS_FROM}"
    key: Callable[[int], Any] = int
    beyond: Callable[[int], str] | None = lambda n: f"id >= {n} and id < {RUN_IDS_FROM}"


PYMILVUS = Keys()  # the pymilvus layer's own schema: ids 0..n-1 are the dataset's rows 0..n-1


def _count(client: MilvusClient, name: str, expr: str, timeout: float) -> int:
    res = client.query(name, filter=expr, output_fields=["count(*)"], consistency_level="Strong", timeout=timeout)
    return int(res[0]["count(*)"]) if res else 0


def _sample_ids(n: int, seed: int) -> list[int]:
    """The first and last rows, and up to SAMPLE others spread over 0..n-1 (seeded: the same for every run)."""
    picks = np.random.default_rng([seed, n]).integers(0, n, min(SAMPLE, n))
    return sorted({0, n - 1, *(int(i) for i in picks)})


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def _refuse(name: str, n: int, settings: Settings, why: str) -> LoadgenError:
    return LoadgenError(
        f"collection {name!r} holds {n} rows that are not the first {n} rows of --dataset {settings.dataset} "
        f"({why}), so its recall cannot be scored; pass --recreate (a collection of loadgen's) or another --collection"
    )


def dataset_rows_held(client: MilvusClient, settings: Settings, name: str, keys: Keys = PYMILVUS) -> int:
    """How many of the dataset's first rows ``name`` holds (0: none); a one-line LoadgenError when its prefilled
    rows (``keys.prefilled``) are not the dataset's first n. Reads only."""
    t = settings.timeout
    n = _count(client, name, keys.prefilled, t)
    if n == 0:
        return 0
    if keys.beyond is not None and _count(client, name, keys.beyond(n), t):
        raise _refuse(name, n, settings, f"some of its ids are {n} or more, so ids 0..{n - 1} are not all there")
    try:
        dataset = truth.open_for(dataclasses.replace(settings, rows=n, truth_rows=0))
    except LoadgenError as exc:
        raise _refuse(name, n, settings, str(exc)) from None
    if dataset.count < n:
        raise _refuse(name, n, settings, f"the dataset has {dataset.count} rows")
    ids = _sample_ids(n, settings.seed)
    got = client.get(name, ids=[keys.key(i) for i in ids], output_fields=[keys.pk, keys.vector], timeout=t)
    index = {keys.key(i): i for i in ids}
    held = {index[row[keys.pk]]: np.asarray(row[keys.vector], dtype=np.float32) for row in got if row[keys.pk] in index}
    if len(held) != len(ids):
        missing = next(i for i in ids if i not in held)
        raise _refuse(name, n, settings, f"id {missing} is missing")
    wanted = set(ids)
    for first, vectors in dataset.iter_base(8192):
        if first > ids[-1]:
            break
        rows = [i for i in range(first, first + len(vectors)) if i in wanted]
        if not rows:
            continue
        expected = vectors[np.asarray(rows) - first]
        found = np.stack([held[i] for i in rows])
        if settings.metric_type == "COSINE":  # a server may store COSINE vectors normalized
            expected, found = _normalized(expected), _normalized(found)
        bad = ~np.isclose(found, expected, rtol=1e-5, atol=1e-6).all(axis=1)
        if bad.any():
            raise _refuse(name, n, settings, f"the vector of id {rows[int(np.flatnonzero(bad)[0])]} differs")
    return n


def truth_rows_for(settings: Settings, held: int, *, will_fill: bool) -> int:
    """``Settings.truth_rows`` for a collection holding ``held`` dataset rows: 0 when the ``--rows`` selection is
    what it holds (or will hold, once filled), else ``held``."""
    selected = truth.open_for(dataclasses.replace(settings, truth_rows=0)).count
    if held in (0, selected) or (will_fill and held < selected):
        return 0
    return held
