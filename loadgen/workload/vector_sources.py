"""Where a dataset's vectors come from: one 2-D array on disk (``.npy``, ``.fvecs``/``.bvecs``/``.ivecs``, an HDF5
dataset, Parquet record batches) or generated, read ``batch`` rows at a time so a file larger than memory can be
inserted. Every bad input is a one-line ``LoadgenError`` naming the file. ``loadgen.workload.datasets`` puts them
together as a ``Dataset``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError

VECS_DTYPES: dict[str, np.dtype[Any]] = {"fvecs": np.dtype("<f4"), "bvecs": np.dtype("u1"), "ivecs": np.dtype("<i4")}
FULL_CHECK_BYTES = 2 << 30  # .fvecs up to this size get every record's dim checked at open; larger ones per chunk
SYNTHETIC_VERSION = 1  # part of the ground-truth cache key: bump when the generator's output changes
CLUSTER_SPREAD = 0.2  # gaussian noise around centers drawn from N(0, 1): blobs ~10x tighter than their spacing


class VectorSource:
    """One 2-D array on disk (or generated): ``rows`` x ``dim``, read ``batch`` rows at a time."""

    label: str
    rows: int
    dim: int

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        """The first ``limit`` rows, in blocks of at most ``batch`` rows (raw dtype)."""
        raise NotImplementedError

    def head(self, n: int) -> np.ndarray:
        parts = list(self.blocks(max(n, 1), n))
        return np.concatenate(parts) if parts else np.empty((0, self.dim))


class NpySource(VectorSource):
    def __init__(self, path: Path) -> None:
        self.label, self.path = str(path), path
        shape = self._map().shape
        if len(shape) != 2 or shape[1] < 1:
            raise LoadgenError(f"{path} holds an array of shape {shape}; a dataset needs a 2-D array (rows, dim)")
        self.rows, self.dim = shape

    def _map(self) -> np.ndarray:
        try:
            arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise LoadgenError(f"{self.path} is not a readable .npy file: {exc}") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
            raise LoadgenError(f"{self.path} does not hold a numeric array")
        return arr

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        arr = self._map()
        for start in range(0, limit, batch):
            yield np.asarray(arr[start : min(start + batch, limit)])


class VecsSource(VectorSource):
    """TEXMEX .fvecs/.bvecs/.ivecs: each record is an int32 dim followed by dim float32/uint8/int32 values."""

    def __init__(self, path: Path, kind: str) -> None:
        self.label, self.path, self.kind = str(path), path, kind
        elem = VECS_DTYPES[kind]
        size = path.stat().st_size
        if size < 4:
            raise LoadgenError(f"{path} is empty or truncated ({size} bytes); a .{kind} record starts with a dim")
        dim = int(np.fromfile(path, dtype="<i4", count=1)[0])
        if not 0 < dim <= 1 << 20:
            raise LoadgenError(f"{path} is not a .{kind} file: the first record's dim is {dim}")
        record = 4 + dim * elem.itemsize
        if size % record:
            raise LoadgenError(
                f"{path} is truncated or corrupt: {size} bytes is not a multiple of "
                f"the {record}-byte record (dim {dim})"
            )
        self.rows, self.dim = size // record, dim
        self._dtype = np.dtype([("dim", "<i4"), ("vec", elem, (dim,))])
        if size <= FULL_CHECK_BYTES:  # small files: fail now, not halfway through an insert
            for _ in self.blocks(max(1, (64 << 20) // record), self.rows):
                pass

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        records = np.memmap(self.path, dtype=self._dtype, mode="r", shape=(self.rows,))
        for start in range(0, limit, batch):
            chunk = records[start : min(start + batch, limit)]
            bad = np.flatnonzero(chunk["dim"] != self.dim)
            if bad.size:
                row = start + int(bad[0])
                raise LoadgenError(
                    f"{self.path} is corrupt: record {row} has dim {int(chunk['dim'][bad[0]])}, "
                    f"the first record has dim {self.dim}"
                )
            yield np.array(chunk["vec"])


class Hdf5Source(VectorSource):
    """One dataset (``train``, ``test``, ``neighbors``) of an ann-benchmarks HDF5 file, sliced on demand."""

    def __init__(self, path: Path, name: str) -> None:
        self.label, self.path, self.name = f"{path}[{name}]", path, name
        with open_hdf5(path) as f:
            if name not in f:
                raise LoadgenError(f"{path} has no '{name}' dataset (ann-benchmarks layout: train, test, neighbors)")
            shape = f[name].shape
        if len(shape) != 2 or shape[1] < 1:
            raise LoadgenError(f"{path}: '{name}' has shape {shape}; expected a 2-D array")
        self.rows, self.dim = shape

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        with open_hdf5(self.path) as f:
            data = f[self.name]
            for start in range(0, limit, batch):
                yield data[start : min(start + batch, limit)]


class ParquetSource(VectorSource):
    """A list column of a VectorDBBench parquet file, streamed in record batches; ``id`` is read alongside."""

    def __init__(self, path: Path, column: str, positional_ids: bool) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise LoadgenError("parquet datasets need pyarrow: pip install pyarrow") from None
        self.label, self.path, self.column, self.positional_ids = str(path), path, column, positional_ids
        if not path.is_file():
            raise LoadgenError(f"{path} does not exist (VectorDBBench layout: train, test, neighbors .parquet)")
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
            raise LoadgenError(f"{path} is not a readable parquet file: {exc}") from None
        names = pf.schema_arrow.names
        for col in ("id", column):
            if col not in names:
                raise LoadgenError(f"{path} has no '{col}' column (columns: {', '.join(names)})")
        self.rows = pf.metadata.num_rows
        first = next(pf.iter_batches(batch_size=1, columns=[column]), None)
        if first is None or self.rows == 0:
            raise LoadgenError(f"{path} has no rows")
        self.dim = len(first.column(0)[0])

    def _batches(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        done = 0
        for rb in pq.ParquetFile(self.path).iter_batches(batch_size=batch, columns=["id", self.column]):
            col = rb.column(self.column)
            if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
                    or pa.types.is_fixed_size_list(col.type)):  # fmt: skip
                raise LoadgenError(f"{self.path}: column '{self.column}' is {col.type}, expected a list of numbers")
            lengths = pc.fill_null(pc.list_value_length(col), -1).to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(lengths != self.dim)
            if bad.size:
                raise LoadgenError(
                    f"{self.path} is corrupt: row {done + int(bad[0])} of '{self.column}' has "
                    f"{int(lengths[bad[0]])} values, the first row has {self.dim}"
                )
            values = col.flatten().to_numpy(zero_copy_only=False).reshape(len(rb), self.dim)
            yield rb.column("id").to_numpy(zero_copy_only=False), values
            done += len(rb)

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        done = 0
        for ids, values in self._batches(batch):
            n = min(len(values), limit - done)
            if self.positional_ids and not np.array_equal(ids[:n], np.arange(done, done + n)):
                row = done + int(np.flatnonzero(ids[:n] != np.arange(done, done + n))[0])
                raise LoadgenError(f"{self.path}: ids must be 0..n-1 in row order, row {row} has id {ids[row - done]}")
            yield values[:n]
            done += n
            if done >= limit:
                return

    def ids(self) -> np.ndarray:
        import pyarrow.parquet as pq

        return pq.read_table(self.path, columns=["id"]).column("id").to_numpy()


class SyntheticSource(VectorSource):
    """Seeded vectors generated in fixed blocks, so any prefix and any batch size give the same rows.

    ``clusters`` 0 is uniform in [-1, 1); otherwise every row is a center (N(0, 1) per coordinate, shared by base
    and queries) plus N(0, CLUSTER_SPREAD) noise. ``stream`` keeps base and queries independent.
    """

    def __init__(self, label: str, *, rows: int, dim: int, seed: int, stream: int, clusters: int) -> None:
        self.label, self.rows, self.dim = label, rows, dim
        self.seed, self.stream, self.clusters = seed, stream, clusters
        self.block_rows = max(1, (1 << 20) // dim)  # ~4 MB per generated block whatever the dim

    def centers(self) -> np.ndarray:
        return np.random.default_rng([self.seed, 2]).standard_normal((max(self.clusters, 1), self.dim), np.float32)

    def _block(self, index: int, centers: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.stream, index])
        if not self.clusters:
            return rng.random((self.block_rows, self.dim), dtype=np.float32) * 2 - 1
        labels = rng.integers(0, self.clusters, self.block_rows)
        noise = rng.standard_normal((self.block_rows, self.dim), dtype=np.float32) * np.float32(CLUSTER_SPREAD)
        return centers[labels] + noise

    def blocks(self, batch: int, limit: int) -> Iterator[np.ndarray]:
        centers = self.centers()
        for index in range(math.ceil(limit / self.block_rows)):
            block = self._block(index, centers)[: limit - index * self.block_rows]
            for start in range(0, len(block), batch):
                yield block[start : start + batch]


def open_hdf5(path: Path) -> Any:
    try:
        import h5py
    except ImportError:
        raise LoadgenError("HDF5 datasets need h5py: pip install h5py") from None
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise LoadgenError(f"{path} is not a readable HDF5 file: {exc}") from None
