"""Vector datasets: base rows to insert, query vectors, and the file's ground truth when it has one.

Base vectors are always read in chunks (memmap, HDF5 slices, Parquet record batches, generated blocks: the sources
in ``loadgen.workload.vector_sources``) so a file larger than memory can be inserted. Every bad input is a one-line
``LoadgenError`` naming the file. Exact ground truth and recall statistics live in ``loadgen.workload.groundtruth``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError
from loadgen.workload.vector_sources import (
    SYNTHETIC_VERSION,
    VECS_DTYPES,
    Hdf5Source,
    NpySource,
    ParquetSource,
    SyntheticSource,
    VecsSource,
    VectorSource,
    open_hdf5,
)

METRICS = ("L2", "IP", "COSINE")
KINDS = ("synthetic", "npy", "fvecs", "bvecs", "ivecs", "hdf5", "parquet")
# ann-benchmarks' `distance` attribute; hamming/jaccard datasets are binary and have no Milvus float equivalent
ANN_DISTANCES = {"euclidean": "L2", "angular": "COSINE", "dot": "IP"}
_SUFFIXES = {".npy": "npy", ".fvecs": "fvecs", ".bvecs": "bvecs", ".ivecs": "ivecs", ".hdf5": "hdf5", ".h5": "hdf5"}


@dataclass(frozen=True)
class Dataset:
    """Base vectors (ids 0..count-1), query vectors and, when the file has them, true neighbors per query."""

    name: str  # what the user passed: every message names it
    dim: int
    count: int
    metric: str
    num_queries: int
    identity: str  # files with size and mtime, or generator parameters: the ground-truth cache key
    base: VectorSource = field(repr=False)
    query_source: VectorSource | None = field(repr=False, default=None)
    neighbor_source: VectorSource | None = field(repr=False, default=None)  # None if count cuts the base short

    def iter_base(self, batch: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first_id, float32 [n, dim]) chunks of ``batch`` rows (the last may be shorter), covering every row once."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        first, pending, have = 0, [], 0
        for block in self.base.blocks(batch, self.count):
            pending.append(block)
            have += len(block)
            while have >= batch:  # sources with record batches (parquet) do not honour `batch` exactly
                buf = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield first, np.array(buf[:batch], dtype=np.float32, order="C")  # a copy: never a read-only mmap
                first, pending, have = first + batch, [buf[batch:]], have - batch
        if have:
            yield first, np.array(np.concatenate(pending), dtype=np.float32, order="C")

    def queries(self) -> np.ndarray:
        if self.query_source is None:
            raise LoadgenError(f"dataset {self.name} has no query vectors: pass a queries file (--queries FILE)")
        return np.ascontiguousarray(self.query_source.head(self.num_queries), dtype=np.float32)

    def neighbors(self) -> np.ndarray | None:
        """The file's true neighbor ids [queries, k], or None (no ground truth, or ``count`` truncated the base)."""
        if self.neighbor_source is None:
            return None
        return np.ascontiguousarray(self.neighbor_source.head(self.num_queries), dtype=np.int64)


def open_dataset(
    spec: str | os.PathLike[str],
    *,
    dim: int | None = None,
    count: int | None = None,
    queries: str | os.PathLike[str] | None = None,
    num_queries: int | None = None,
    neighbors: str | os.PathLike[str] | None = None,
    seed: int = 42,
    kind: str | None = None,
    metric: str | None = None,
    clusters: int = 16,
) -> Dataset:
    """Open ``spec``: ``synthetic:uniform``, ``synthetic:clustered[:K]``, a .npy/.fvecs/.bvecs/.hdf5 file or a
    VectorDBBench parquet directory. ``kind`` overrides the guess from the name.

    ``queries``/``neighbors``: separate query (.npy/.fvecs/.bvecs) and ground-truth (.ivecs/.npy) files;
    ``X_base.fvecs`` finds ``X_query.fvecs`` and ``X_groundtruth.ivecs`` by itself. ``count``/``num_queries`` use
    only the first rows (synthetic: how many to generate, default 10000 and 1000). ``metric`` applies when the
    file does not name one (HDF5's ``distance`` wins); default L2.
    """
    name = str(spec)
    if metric is not None and metric.upper() not in METRICS:
        raise LoadgenError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    metric = metric.upper() if metric else None
    kind = kind or _guess_kind(name)
    if kind not in KINDS or kind == "ivecs":
        raise LoadgenError(f"unknown dataset kind {kind!r} for {name}; use one of {', '.join(KINDS[:-1])}")
    if kind == "synthetic":
        return _synthetic(name, dim=dim, count=count, nq=num_queries, seed=seed, metric=metric, clusters=clusters)
    path = Path(name.removeprefix(f"{kind}:")).expanduser()
    if not path.exists():
        raise LoadgenError(f"dataset file {path} does not exist")
    if queries is None and path.name.endswith(("_base.fvecs", "_base.bvecs")):
        queries, neighbors = _texmex_siblings(path, neighbors)
    files: list[Path]
    if kind == "hdf5":
        base, qsrc, nsrc, files, file_metric = _hdf5_sources(path, own_queries=queries is None)
        metric = file_metric or metric
    elif kind == "parquet":
        base, qsrc, nsrc, files = _parquet_sources(path.parent if path.is_file() else path, queries is None)
    else:
        base, qsrc, nsrc, files = _file_source(path, kind, "base"), None, None, [path]
    if neighbors is not None or queries is not None:
        nsrc = None  # the file's own ground truth belongs to its own queries
    for extra, role in ((queries, "queries"), (neighbors, "neighbors")):
        if extra is not None:
            extra_path = Path(extra).expanduser()
            source = _file_source(extra_path, _guess_kind(str(extra_path)), role)
            qsrc, nsrc = (source, nsrc) if role == "queries" else (qsrc, source)
            files.append(extra_path)
    sources = (base, qsrc, nsrc, files)
    return _checked(name, kind, sources, dim=dim, count=count, num_queries=num_queries, metric=metric or "L2")


def _checked(
    name: str, kind: str, sources: _Sources, *, dim: int | None, count: int | None, num_queries: int | None, metric: str
) -> Dataset:
    """The dataset once dims and row counts agree with each other and with what the user asked for."""
    base, qsrc, nsrc, files = sources
    if dim is not None and dim != base.dim:
        raise LoadgenError(f"dataset {name} has dim {base.dim}, --dim is {dim}")
    if qsrc is not None and qsrc.dim != base.dim:
        raise LoadgenError(f"queries {qsrc.label} have dim {qsrc.dim}, dataset {name} has dim {base.dim}")
    total_queries = qsrc.rows if qsrc is not None else 0
    count = _limit(count, base.rows, f"dataset {name} has {base.rows} rows, --rows is {{}}")
    nq = _limit(num_queries, total_queries, f"dataset {name} has {total_queries} queries, {{}} were asked for")
    if nsrc is not None and nsrc.rows < nq:
        raise LoadgenError(f"ground truth {nsrc.label} has {nsrc.rows} rows, dataset {name} has {nq} queries")
    if count < base.rows:
        nsrc = None  # the file's neighbor ids index the whole base; a prefix needs its own (computed) ground truth
    stamps = ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    identity = f"{kind}|{stamps}|count={count}|queries={nq}"
    return Dataset(name, base.dim, count, metric, nq, identity, base, qsrc, nsrc)


def _texmex_siblings(path: Path, neighbors: Any) -> tuple[Path | None, Any]:
    """TEXMEX naming: sift_base.fvecs comes with sift_query.fvecs and sift_groundtruth.ivecs."""
    query = path.with_name(path.name.replace("_base.", "_query."))
    truth = path.with_name(path.name.rsplit("_base.", 1)[0] + "_groundtruth.ivecs")
    return (query if query.exists() else None), (truth if neighbors is None and truth.exists() else neighbors)


_Sources = tuple[VectorSource, VectorSource | None, VectorSource | None, list[Path]]


def _hdf5_sources(
    path: Path, own_queries: bool
) -> tuple[VectorSource, VectorSource | None, VectorSource | None, list[Path], str | None]:
    """ann-benchmarks layout: train, test, neighbors and the ``distance`` attribute (None: the file names none)."""
    base = Hdf5Source(path, "train")
    with open_hdf5(path) as f:
        distance = f.attrs.get("distance")
        has_test, has_neighbors = "test" in f, "neighbors" in f
    if isinstance(distance, bytes):
        distance = distance.decode()
    if distance is not None and str(distance) not in ANN_DISTANCES:
        raise LoadgenError(f"{path} uses distance {distance!r}; loadgen supports {', '.join(ANN_DISTANCES)}")
    qsrc = Hdf5Source(path, "test") if has_test and own_queries else None
    nsrc = Hdf5Source(path, "neighbors") if has_neighbors and own_queries else None
    return base, qsrc, nsrc, [path], ANN_DISTANCES.get(str(distance)) if distance is not None else None


def _parquet_sources(directory: Path, own_queries: bool) -> _Sources:
    """VectorDBBench layout: train.parquet (id, emb), test.parquet (id, emb), neighbors.parquet (id, neighbors_id)."""
    base = ParquetSource(directory / "train.parquet", "emb", positional_ids=True)
    if not own_queries:
        return base, None, None, [base.path]
    test = ParquetSource(directory / "test.parquet", "emb", positional_ids=False)
    if not (directory / "neighbors.parquet").exists():
        return base, test, None, [base.path, test.path]
    truth = ParquetSource(directory / "neighbors.parquet", "neighbors_id", positional_ids=False)
    if not np.array_equal(truth.ids(), test.ids()):
        raise LoadgenError(f"{truth.path}: its ids are not those of {test.path}, in the same order")
    return base, test, truth, [base.path, test.path, truth.path]


def _synthetic(
    name: str, *, dim: int | None, count: int | None, nq: int | None, seed: int, metric: str | None, clusters: int
) -> Dataset:
    _, _, rest = name.partition(":")
    distribution, _, k = rest.partition(":")
    if distribution not in ("uniform", "clustered") or (k and (distribution == "uniform" or not k.isdigit())):
        raise LoadgenError(f"unknown synthetic dataset {name!r}; use synthetic:uniform or synthetic:clustered[:K]")
    clusters = (int(k) if k else clusters) if distribution == "clustered" else 0
    dim, count, nq = dim or 128, 10_000 if count is None else count, 1000 if nq is None else nq
    for label, value in (("dim", dim), ("count", count), ("queries", nq), ("clusters", clusters or 1)):
        if value < 1:
            raise LoadgenError(f"{name}: {label} must be at least 1, got {value}")
    if seed < 0:
        raise LoadgenError(f"{name}: seed must be 0 or more, got {seed}")
    identity = f"synthetic-v{SYNTHETIC_VERSION}|{distribution}|clusters={clusters}|dim={dim}|count={count}|seed={seed}"
    base = SyntheticSource(f"{name} base", rows=count, dim=dim, seed=seed, stream=0, clusters=clusters)
    qsrc = SyntheticSource(f"{name} queries", rows=nq, dim=dim, seed=seed, stream=1, clusters=clusters)
    return Dataset(name, dim, count, metric or "L2", nq, f"{identity}|queries={nq}", base, qsrc, None)


def _guess_kind(name: str) -> str:
    if name.startswith("synthetic:"):
        return "synthetic"
    for kind in KINDS:
        if name.startswith(f"{kind}:"):
            return kind
    path = Path(name).expanduser()
    if path.suffix.lower() == ".parquet" or (path.is_dir() and (path / "train.parquet").exists()):
        return "parquet"
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    if not path.exists():
        raise LoadgenError(f"dataset file {path} does not exist")
    raise LoadgenError(
        f"unknown dataset format {name!r}: use synthetic:uniform, synthetic:clustered, .npy, .fvecs, .bvecs, "
        ".hdf5 or a VectorDBBench parquet directory"
    )


def _file_source(path: Path, kind: str, role: str) -> VectorSource:
    if not path.exists():
        raise LoadgenError(f"{role} file {path} does not exist")
    if kind == "npy":
        return NpySource(path)
    if kind in VECS_DTYPES:
        return VecsSource(path, kind)
    raise LoadgenError(f"{role} file {path}: use .npy, .fvecs, .bvecs or .ivecs")


def _limit(asked: int | None, available: int, message: str) -> int:
    if asked is None:
        return available
    if asked < 1 or asked > available:
        raise LoadgenError(message.format(asked))
    return asked
