"""`loadgen compare`: the tutorials' sync-vs-async experiment, on the real embedded Milvus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]


def test_strong_consistency_async_searches_beat_sequential_sync(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    proc = run_cli(
        "compare", "--host", milvus.uri, "--layers", "pymilvus", "--counts", "100", "--dim", "16",
        "--consistency-level", "Strong", "--out", str(tmp_path), timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {(r["layer"], r["op"], r["n"]): r for r in json.loads((tmp_path / "compare.json").read_text())["rows"]}
    search = rows[("pymilvus", "search", 100)]
    assert search["sync_errors"] == 0 and search["async_errors"] == 0
    assert search["async_s"] < search["sync_s"]  # the direction the tutorials show, not a tuned ratio
    assert {op for (_, op, _) in rows} == {"insert", "search", "delete"}
    assert "speedup" in proc.stdout and "pymilvus  search  100" in proc.stdout
    png = (tmp_path / "compare.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not [c for c in client.list_collections() if c.startswith("loadgen_compare")]  # cleaned up


def test_every_layer_small_counts(milvus: ServerInfo, client: MilvusClient, tmp_path: Path) -> None:
    proc = run_cli(
        "compare", "--host", milvus.uri, "--counts", "3,5", "--dim", "16", "--out", str(tmp_path), timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "compare.json").read_text())["rows"]
    got = {(r["layer"], r["op"], r["n"]) for r in rows}
    expected = {
        (layer, op, n)
        for layer, ops in {"pymilvus": ("insert", "search", "delete"), "langchain": ("add", "search", "delete"),
                           "llamaindex": ("add", "query")}.items()
        for op in ops
        for n in (3, 5)
    }  # fmt: skip
    assert got == expected
    assert all(r["sync_errors"] == 0 and r["async_errors"] == 0 for r in rows), rows
    assert not [c for c in client.list_collections() if c.startswith("loadgen_compare")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--counts", "10,x"], "--counts '10,x': expected comma-separated positive integers"),
        (["--layers", "haystack"], "unknown client layer 'haystack'"),
        (["--embedding", "local", "--dim", "384"], "pip install torch==2.13.0 'milvus-loadgen[local]'"),
    ],
)
def test_bad_compare_input(milvus: ServerInfo, tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli("compare", "--host", milvus.uri, "--out", str(tmp_path), *args, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("loadgen: error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
