"""The execution model owns its resources: a frozen server stalls no async user beyond its timeout, not even while
stores are being opened (the libraries' sync constructors run in the users' greenlets, never on the shared asyncio
loop)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, stop_thawed

from loadgen.milvus.server import EmbeddedMilvus

pytestmark = [pytest.mark.milvus, pytest.mark.slow]


@pytest.fixture
def frozen_milvus(tmp_path: Path) -> Iterator[EmbeddedMilvus]:
    server = EmbeddedMilvus(tmp_path / "milvus", die_with_parent=True)
    server.start()
    try:
        yield server
    finally:
        stop_thawed(server)


def test_opening_stores_on_a_frozen_server_never_blocks_the_loop(frozen_milvus: EmbeddedMilvus) -> None:
    info = frozen_milvus.info
    assert info is not None
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1", "URI": info.uri}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "scripts" / "frozen_open.py")],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.killpg(info.pid, signal.SIGSTOP)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["opens"]) == 6, err[-2000:]
    for opened in result["opens"]:  # each fails on its own deadline (2 s, +1 for the bridge's guard) ...
        assert opened["error"] and opened["seconds"] < 2.0 + 1.5, opened
    # ... all at once, not one after another on a blocked loop (6 x 2 s), and the loop kept ticking meanwhile
    assert result["total_s"] < 2.0 * 2 + 3.0, result
    assert result["max_loop_gap_ms"] < 500, result
