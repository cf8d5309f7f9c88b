"""Unit tests of dataset loaders, exact ground truth with its cache, and recall statistics (no Milvus)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadgen.errors import LoadgenError
from loadgen.workload import groundtruth
from loadgen.workload.datasets import Dataset, open_dataset
from loadgen.workload.groundtruth import RecallStats, compute_ground_truth, ground_truth, recall_at_k
from loadgen.workload.vector_sources import SyntheticSource

RNG = np.random.default_rng(7)
BASE = RNG.standard_normal((103, 8)).astype(np.float32)
QUERIES = RNG.standard_normal((5, 8)).astype(np.float32)
TRUTH = np.argsort(RNG.random((5, 103)), axis=1)[:, :10].astype(np.int64)


def write_vecs(path: Path, rows: np.ndarray, dtype: str) -> Path:
    dims = np.full((len(rows), 1), rows.shape[1], dtype="<i4")
    body = np.ascontiguousarray(rows, dtype=dtype)
    records = np.concatenate([dims.view(np.uint8), body.view(np.uint8).reshape(len(rows), -1)], axis=1)
    path.write_bytes(records.tobytes())
    return path


def write_hdf5(path: Path, distance: str | None = "euclidean", **arrays: np.ndarray) -> Path:
    arrays = arrays or {"train": BASE, "test": QUERIES, "neighbors": TRUTH}
    with h5py.File(path, "w") as f:
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
        if distance:
            f.attrs["distance"] = distance
    return path


def write_parquet(directory: Path, base: np.ndarray = BASE, row_group: int = 17) -> Path:
    directory.mkdir(exist_ok=True)

    def table(ids: np.ndarray, column: str, values: np.ndarray) -> pa.Table:
        return pa.table({"id": pa.array(ids, pa.int64()), column: pa.array(list(values))})

    pq.write_table(table(np.arange(len(base)), "emb", base), directory / "train.parquet", row_group_size=row_group)
    pq.write_table(table(np.arange(len(QUERIES)), "emb", QUERIES), directory / "test.parquet")
    pq.write_table(table(np.arange(len(TRUTH)), "neighbors_id", TRUTH), directory / "neighbors.parquet")
    return directory


def collect(ds: Dataset, batch: int) -> np.ndarray:
    chunks = list(ds.iter_base(batch))
    assert [first for first, _ in chunks] == list(range(0, ds.count, batch))  # every row once, ids in order
    assert all(len(c) == batch for _, c in chunks[:-1])
    assert all(c.dtype == np.float32 and c.shape[1] == ds.dim for _, c in chunks)
    assert all(c.flags.c_contiguous and c.flags.writeable for _, c in chunks)  # callers may normalize in place
    return np.concatenate([c for _, c in chunks])


def brute_force(base: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "L2":
        dist = ((q[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    elif metric == "IP":
        dist = -(q @ b.T)
    else:
        dist = -(q / np.linalg.norm(q, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def raises(fragment: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(LoadgenError) as info:
        open_dataset(*args, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


# ---- loaders: values round-trip exactly, chunks cover every row once


def test_npy_with_query_and_neighbor_files(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", BASE)
    np.save(tmp_path / "q.npy", QUERIES)
    np.save(tmp_path / "gt.npy", TRUTH)
    ds = open_dataset(tmp_path / "base.npy", queries=tmp_path / "q.npy", neighbors=tmp_path / "gt.npy", metric="ip")
    assert (ds.dim, ds.count, ds.num_queries, ds.metric) == (8, 103, 5, "IP")
    for batch in (1, 10, 103, 500):
        np.testing.assert_array_equal(collect(ds, batch), BASE)
    np.testing.assert_array_equal(ds.queries(), QUERIES)
    np.testing.assert_array_equal(ds.neighbors(), TRUTH)


def test_fvecs_bvecs_ivecs_round_trip(tmp_path: Path) -> None:
    ints = RNG.integers(0, 256, (103, 8)).astype(np.uint8)
    write_vecs(tmp_path / "sift_base.fvecs", BASE, "<f4")
    write_vecs(tmp_path / "sift_query.fvecs", QUERIES, "<f4")
    write_vecs(tmp_path / "sift_groundtruth.ivecs", TRUTH, "<i4")
    ds = open_dataset(str(tmp_path / "sift_base.fvecs"))  # TEXMEX siblings found by name
    np.testing.assert_array_equal(collect(ds, 7), BASE)
    np.testing.assert_array_equal(ds.queries(), QUERIES)
    np.testing.assert_array_equal(ds.neighbors(), TRUTH)
    assert ds.neighbors().dtype == np.int64  # type: ignore[union-attr]

    write_vecs(tmp_path / "b.bvecs", ints, "u1")
    bds = open_dataset(tmp_path / "b.bvecs", queries=write_vecs(tmp_path / "q.bvecs", ints[:3], "u1"))
    np.testing.assert_array_equal(collect(bds, 50), ints.astype(np.float32))
    np.testing.assert_array_equal(bds.queries(), ints[:3].astype(np.float32))


def test_hdf5_ann_benchmarks_layout(tmp_path: Path) -> None:
    ds = open_dataset(write_hdf5(tmp_path / "a.hdf5", "angular"))
    assert (ds.dim, ds.count, ds.metric) == (8, 103, "COSINE")
    np.testing.assert_array_equal(collect(ds, 20), BASE)
    np.testing.assert_array_equal(ds.queries(), QUERIES)
    np.testing.assert_array_equal(ds.neighbors(), TRUTH)
    assert open_dataset(write_hdf5(tmp_path / "d.hdf5", "dot")).metric == "IP"
    assert open_dataset(write_hdf5(tmp_path / "e.h5", "euclidean"), metric="COSINE").metric == "L2"  # file wins


def test_parquet_vectordbbench_layout_rebatches_record_batches(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet(tmp_path / "vdb"), num_queries=4)
    assert (ds.dim, ds.count, ds.num_queries) == (8, 103, 4)
    for batch in (1, 10, 64, 200):  # row groups of 17 rows never line up with the batch
        np.testing.assert_array_equal(collect(ds, batch), BASE)
    np.testing.assert_array_equal(ds.queries(), QUERIES[:4])
    np.testing.assert_array_equal(ds.neighbors(), TRUTH[:4])


def test_count_takes_a_prefix_and_drops_the_files_ground_truth(tmp_path: Path) -> None:
    ds = open_dataset(write_hdf5(tmp_path / "a.hdf5"), count=50)
    np.testing.assert_array_equal(collect(ds, 16), BASE[:50])
    assert ds.neighbors() is None  # the file's ids index all 103 rows


# ---- synthetic


def test_synthetic_is_deterministic_per_seed_and_batch_independent() -> None:
    a = open_dataset("synthetic:uniform", dim=16, count=300, num_queries=7, seed=1)
    b = open_dataset("synthetic:uniform", dim=16, count=300, num_queries=7, seed=1)
    c = open_dataset("synthetic:uniform", dim=16, count=300, num_queries=7, seed=2)
    rows = collect(a, 64)
    np.testing.assert_array_equal(rows, collect(b, 300))
    np.testing.assert_array_equal(a.queries(), b.queries())
    assert not np.array_equal(rows, collect(c, 64)) and not np.array_equal(a.queries(), c.queries())
    assert not np.array_equal(rows[:7], a.queries())  # queries are their own stream
    assert rows.shape == (300, 16) and rows.min() >= -1 and rows.max() < 1 and a.neighbors() is None
    small = open_dataset("synthetic:uniform", dim=16, count=100, seed=1)
    np.testing.assert_array_equal(collect(small, 33), rows[:100])  # a smaller count is a prefix


def test_synthetic_generates_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    source = SyntheticSource("x", rows=10, dim=4, seed=0, stream=0, clusters=0)
    monkeypatch.setattr(source, "block_rows", 3)  # a 10M-row dataset is made the same way, a block at a time
    assert [len(b) for b in source.blocks(2, 10)] == [2, 1, 2, 1, 2, 1, 1]


def test_clustered_queries_sit_near_their_center() -> None:
    ds = open_dataset("synthetic:clustered:4", dim=32, count=400, num_queries=50, seed=3)
    assert isinstance(ds.base, SyntheticSource)
    centers = ds.base.centers()
    assert centers.shape == (4, 32)
    for vectors in (ds.queries(), collect(ds, 128)):
        dist = np.sort(np.linalg.norm(vectors[:, None, :] - centers[None], axis=2), axis=1)
        assert np.all(dist[:, 0] * 3 < dist[:, 1])  # each point is far closer to one center than to any other
    uniform = open_dataset("synthetic:uniform", dim=32, count=400, num_queries=50, seed=3)
    assert collect(uniform, 400).std() < collect(ds, 400).std()  # spread between blobs, not within


# ---- ground truth


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_computed_ground_truth_matches_brute_force(tmp_path: Path, metric: str) -> None:
    np.save(tmp_path / "base.npy", BASE)
    np.save(tmp_path / "q.npy", QUERIES)
    ds = open_dataset(tmp_path / "base.npy", queries=tmp_path / "q.npy")
    expected = brute_force(BASE, QUERIES, 10, metric)
    for chunk_rows in (4, 10, 1000):  # chunks smaller than k, around k, and the whole base
        np.testing.assert_array_equal(compute_ground_truth(ds, 10, metric, chunk_rows=chunk_rows), expected)
    got = ground_truth(ds, 10, metric)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def test_ground_truth_prefers_the_files_neighbors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = open_dataset(write_hdf5(tmp_path / "a.hdf5"))
    monkeypatch.setattr(groundtruth, "compute_ground_truth", pytest.fail)
    np.testing.assert_array_equal(ground_truth(ds, 4, "L2", tmp_path), TRUTH[:, :4])
    monkeypatch.undo()
    # another metric or a larger k than the file holds: computed
    np.testing.assert_array_equal(ground_truth(ds, 3, "IP"), brute_force(BASE, QUERIES, 3, "IP"))
    np.testing.assert_array_equal(ground_truth(ds, 11, "L2"), brute_force(BASE, QUERIES, 11, "L2"))


def test_ground_truth_is_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = open_dataset("synthetic:clustered", dim=8, count=200, num_queries=6, seed=5)
    calls: list[int] = []
    real = groundtruth.compute_ground_truth

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(groundtruth, "compute_ground_truth", counting)
    first = ground_truth(ds, 5, "L2", tmp_path / "cache")
    assert calls == [1] and len(list((tmp_path / "cache").glob("groundtruth-*.npy"))) == 1
    again = open_dataset("synthetic:clustered", dim=8, count=200, num_queries=6, seed=5)
    np.testing.assert_array_equal(ground_truth(again, 5, "L2", tmp_path / "cache"), first)
    assert calls == [1]  # loaded, not recomputed
    ground_truth(ds, 5, "IP", tmp_path / "cache")
    ground_truth(
        open_dataset("synthetic:clustered", dim=8, count=200, num_queries=6, seed=6), 5, "L2", tmp_path / "cache"
    )
    assert calls == [1, 1, 1]  # metric and dataset are part of the key
    np.testing.assert_array_equal(first, brute_force(collect(ds, 200), ds.queries(), 5, "L2"))


def test_cache_key_follows_file_changes(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", BASE)
    np.save(tmp_path / "q.npy", QUERIES)
    before = open_dataset(tmp_path / "base.npy", queries=tmp_path / "q.npy")
    np.save(tmp_path / "base.npy", BASE[:90])
    after = open_dataset(tmp_path / "base.npy", queries=tmp_path / "q.npy")
    assert groundtruth.cache_key(before, 5, "L2") != groundtruth.cache_key(after, 5, "L2")


# ---- recall


def test_recall_at_k() -> None:
    assert recall_at_k([1, 2, 3], np.array([3, 2, 1]), 3) == 1.0
    assert recall_at_k([1, 9, 8, 2], np.array([1, 2, 3, 4]), 2) == 0.5  # only the first k of each count
    assert recall_at_k([5], np.array([5, 6]), 2) == 0.5  # fewer hits than k are misses
    assert recall_at_k([], np.array([1]), 1) == 0.0
    with pytest.raises(ValueError):
        recall_at_k([1], np.array([1]), 2)


def test_recall_stats_merge_percentiles_and_dict_round_trip() -> None:
    values = [i / 10 for i in RNG.integers(0, 11, 500)]
    a, b, union = RecallStats(), RecallStats(), RecallStats()
    a.extend(values[:123])
    b.extend(values[123:])
    union.extend(values)
    merged = RecallStats.from_dict(a.to_dict()).merge(RecallStats.from_dict(b.to_dict()))
    assert merged == union and merged.summary() == union.summary()
    summary = union.summary()
    assert summary["count"] == 500 and summary["mean"] == pytest.approx(np.mean(values))
    for p in (1, 5, 50):
        assert summary[f"p{p}"] == pytest.approx(np.percentile(values, p, method="inverted_cdf"))
    assert RecallStats().count == 0 and np.isnan(RecallStats().summary()["p1"])
    stats = RecallStats()
    assert stats.add_search([1, 2], np.array([2, 3]), 2) == 0.5 and stats.count == 1


# ---- bad inputs: one line naming what is wrong


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    raises("does not exist", tmp_path / "nope.fvecs")
    (tmp_path / "x.csv").write_text("1,2\n")
    raises("unknown dataset format", tmp_path / "x.csv")
    raises("unknown synthetic dataset", "synthetic:gaussian")
    raises("unknown metric", "synthetic:uniform", metric="hamming")
    raises("unknown dataset kind", str(tmp_path / "x.csv"), kind="csv")

    good = write_vecs(tmp_path / "a.fvecs", BASE, "<f4")
    (tmp_path / "cut.fvecs").write_bytes(good.read_bytes()[:-3])
    raises("not a multiple of the 36-byte record", tmp_path / "cut.fvecs")
    mixed = bytearray(good.read_bytes())
    mixed[36 * 4 : 36 * 4 + 4] = np.int32(5).tobytes()  # record 4 claims dim 5
    (tmp_path / "mixed.fvecs").write_bytes(bytes(mixed))
    raises("record 4 has dim 5", tmp_path / "mixed.fvecs")
    (tmp_path / "empty.fvecs").write_bytes(b"")
    raises("empty or truncated", tmp_path / "empty.fvecs")

    raises("has dim 8, --dim is 64", good, dim=64)
    raises("have dim 4", good, queries=write_vecs(tmp_path / "q4.fvecs", QUERIES[:, :4], "<f4"))
    raises("has 103 rows, --rows is 500", good, count=500)
    raises("queries file", good, queries=tmp_path / "missing.npy")

    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    raises("not a readable .npy", tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    raises("2-D array", tmp_path / "flat.npy")

    raises("no 'train' dataset", write_hdf5(tmp_path / "t.hdf5", test=QUERIES))
    raises("distance 'jaccard'", write_hdf5(tmp_path / "j.hdf5", "jaccard"))
    (tmp_path / "fake.hdf5").write_bytes(b"\x00" * 64)
    raises("not a readable HDF5 file", tmp_path / "fake.hdf5")
    raises("have dim 3", write_hdf5(tmp_path / "m.hdf5", train=BASE, test=QUERIES[:, :3]))

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "train.parquet").write_bytes(b"junk")
    raises("not a readable parquet file", tmp_path / "p")
    shuffled = write_parquet(tmp_path / "s")
    pq.write_table(pa.table({"id": pa.array([0, 2, 1]), "emb": pa.array(list(BASE[:3]))}), shuffled / "train.parquet")
    ds = open_dataset(shuffled)
    with pytest.raises(LoadgenError, match="row 1 has id 2"):
        list(ds.iter_base(2))

    with pytest.raises(LoadgenError, match="no query vectors"):
        open_dataset(good).queries()
    with pytest.raises(LoadgenError, match="top-k 200"):
        ground_truth(open_dataset("synthetic:uniform", dim=4, count=100, num_queries=2), 200)
