"""Recall measured on the right thing: the load starts once the index covers every row and the indexed segments are
loaded, and the ground truth matches the rows a reused collection holds (or the run refuses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]


def _run(milvus: ServerInfo, out: Path, *args: str, code: int = 0) -> tuple[Path, str]:
    proc = run_cli(
        "run", "--host", milvus.uri, "--groundtruth-cache", str(out.parent / "gt"), "--out", str(out), *args,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr[-3000:]
    return out, proc.stderr


def test_load_starts_once_the_index_covers_every_row(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    """A fresh 20k x 64 HNSW collection with a small ef: searches that ran before the index was loaded would score
    1.000 (Milvus 2.3.5 answers from the unindexed rows for ~17 s after the flush); here the first second's recall
    is the last second's, and below 1."""
    name = "lg_index_wait"
    try:
        out, log = _run(
            milvus, tmp_path / "out", "--collection", name, "--dataset", "synthetic:clustered", "--rows", "20000",
            "--dim", "64", "--index-type", "HNSW", "--index-params", '{"M": 8, "efConstruction": 32}',
            "--search-params", '{"ef": 10}', "--top-k", "10", "--weights", "search=1", "-u", "4", "-t", "6s",
        )  # fmt: skip
        assert f"waiting for the HNSW index of {name} to cover 20000 rows ... done in" in log, log[-3000:]
        series = {f"{r['type']} {r['name']}": r for r in json.loads((out / "recall.json").read_text())["requests"]}
        seconds = series["pymilvus search"]["per_second"]  # [[unix second, searches, mean recall], ...]
        full = [s for s in seconds[1:-1] if s[1] >= 20]  # whole seconds with enough searches to compare
        assert len(full) >= 3, seconds
        first, last = full[0][2], full[-1][2]
        assert series["pymilvus search"]["mean"] < 0.97, series  # the index's own recall, not brute force's 1.000
        assert first < 0.97 and abs(first - last) < 0.06, seconds
    finally:
        if client.has_collection(name):
            client.drop_collection(name)


FLAT = ["--dataset", "synthetic:clustered", "--dim", "16", "--index-type", "FLAT", "--weights", "search=1"]
FLAT += ["-u", "2", "-t", "3s", "--consistency-level", "Strong"]


def test_reused_collection_is_rescored_over_the_rows_it_holds_or_refused(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    """FLAT is exact: recall is 1.000 when the truth matches the collection. 4,000 dataset rows kept, then a run
    with --rows 2000: scored against the first 2,000 only, recall would read about 0.5."""
    name = "lg_truth_reuse"
    try:
        _run(milvus, tmp_path / "keep", "--collection", name, *FLAT, "--rows", "4000", "--keep-data")
        out, log = _run(milvus, tmp_path / "reuse", "--collection", name, *FLAT, "--rows", "2000")
        assert f"ground truth over the 4000 dataset rows collection {name} holds (--rows selects 2000)" in log, log
        rec = json.loads((out / "results.json").read_text())["recall"]
        assert rec and all(e["count"] > 0 and e["mean"] == 1.0 for e in rec.values()), rec
        # the same collection, another dataset: its rows are not that dataset's, so the run refuses up front
        _, log = _run(
            milvus, tmp_path / "other", "--collection", name, *FLAT, "--rows", "2000", "--dataset",
            "synthetic:uniform", code=2,
        )  # fmt: skip
        lines = log.strip().splitlines()
        assert lines[-1].startswith("loadgen: error: ") and len([x for x in lines if "error" in x]) == 1, log
        assert f"collection '{name}' holds 4000 rows that are not the first 4000 rows of --dataset" in lines[-1]
        assert not (tmp_path / "other" / "results.json").exists()
        assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 4000  # untouched
    finally:
        if client.has_collection(name):
            client.drop_collection(name)
