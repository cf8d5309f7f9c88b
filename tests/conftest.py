"""Shared fixtures: one real embedded Milvus for the session, and helpers to run loadgen and read server metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from loadgen.server import EmbeddedMilvus, ServerInfo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    server = EmbeddedMilvus(tmp_path_factory.mktemp("milvus"), die_with_parent=True)
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture
def client(milvus: ServerInfo) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=milvus.uri, timeout=10)
    yield c
    c.close()


def run_cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``loadgen ARGS`` in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "loadgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def server_counter(info: ServerInfo, function: str, status: str = "success") -> int:
    """milvus_proxy_req_count{function_name=...,status=...} from the server's Prometheus endpoint."""
    text = urllib.request.urlopen(info.metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        labels_match = f'function_name="{function}"' in line and f'status="{status}"' in line
        if line.startswith("milvus_proxy_req_count{") and labels_match:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def snapshot(client: MilvusClient) -> dict[str, tuple[str, int]]:
    """Every collection with its description and row count: what 'nothing touched' compares."""
    out = {}
    for name in client.list_collections():
        desc = client.describe_collection(name)
        client.load_collection(name)
        rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        out[name] = (desc.get("description", ""), int(rows[0]["count(*)"]))
    return out
