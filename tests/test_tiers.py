"""The test tiers are enforced: a test that uses a Milvus server fixture is marked `milvus` by tests/conftest.py (so
`make test-fast` deselects it), and every other test runs with LOADGEN_NO_SERVER set, so an embedded server it
would start fails at once instead of quietly running in the no-server tier."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from loadgen.config.settings import NO_SERVER_ENV
from loadgen.errors import ServerError
from loadgen.milvus.server import EmbeddedMilvus

TIER_CONFTEST = """
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("suite_conftest", {path!r})
suite = sys.modules["suite_conftest"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
milvus, pytest_collection_modifyitems = suite.milvus, suite.pytest_collection_modifyitems
"""
TIER_TESTS = """
import pytest

@pytest.fixture
def through_a_fixture(milvus):
    return milvus

def test_uses_the_server(milvus): pass
def test_uses_it_through_a_fixture(through_a_fixture): pass
def test_needs_no_server(): pass
"""


def _collected(folder: Path, marks: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", marks, str(folder)],
        capture_output=True, text=True, cwd=folder, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )  # fmt: skip
    assert proc.returncode in (0, 5), proc.stdout[-2000:] + proc.stderr[-2000:]  # 5: none collected
    return {line.split("::")[-1] for line in proc.stdout.splitlines() if "::" in line}


def test_a_test_using_a_server_fixture_is_in_the_milvus_tier(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(TIER_CONFTEST.format(path=str(ROOT / "tests" / "conftest.py")))
    (tmp_path / "test_tiered.py").write_text(TIER_TESTS)
    assert _collected(tmp_path, "not milvus") == {"test_needs_no_server"}
    assert _collected(tmp_path, "milvus") == {"test_uses_the_server", "test_uses_it_through_a_fixture"}


def test_outside_the_milvus_tier_no_embedded_server_starts(tmp_path: Path) -> None:
    assert os.environ.get(NO_SERVER_ENV) == "1"  # set by conftest for this unmarked test
    with pytest.raises(ServerError, match=f"{NO_SERVER_ENV} is set"):
        EmbeddedMilvus(tmp_path / "milvus").start()
    assert not (tmp_path / "milvus").exists()
    proc = run_cli("run", "--rows", "10", "--dim", "4", "-t", "1s", "--out", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"loadgen: error: {NO_SERVER_ENV} is set: no embedded Milvus may start here; pass --host"
    )
    assert not (tmp_path / "out").exists()
