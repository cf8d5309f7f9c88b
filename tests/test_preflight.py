"""loadgen.cli.preflight on its own: Locust's parser without importing Locust, paths found unwritable without
creating anything, locustfile class names, and the server limits table (checked on the real server in
test_bad_input.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from loadgen.cli import preflight
from loadgen.config import paths
from loadgen.errors import LoadgenError


@pytest.mark.parametrize(("text", "seconds"), [("20", 20), ("20s", 20), ("3m", 180), ("1h30m", 5400)])
def test_run_time_as_locust_reads_it(text: str, seconds: int) -> None:
    assert preflight.run_time(text) == seconds


@pytest.mark.parametrize("text", ["3x", "1.5m", "", "0", "0s", "m5"])
def test_run_time_locust_would_refuse_or_never_end(text: str) -> None:
    with pytest.raises(LoadgenError, match="--run-time"):
        preflight.run_time(text)


def test_locusts_parser_is_used_without_importing_locust_or_gevent() -> None:
    code = (
        "import sys; from loadgen.cli import preflight; preflight.run_time('5m'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_out_dirs(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    paths.writable_dir(tmp_path / "new" / "deeper")
    paths.writable_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created, no probe left
    with pytest.raises(LoadgenError, match="cannot be created: /proc takes no new folder"):
        paths.writable_dir(Path("/proc/nope/out"))  # every permission bit says yes to root; the filesystem says no
    with pytest.raises(LoadgenError, match="is not a directory"):
        paths.writable_dir(a_file / "out")
    with pytest.raises(LoadgenError, match="exists and is not a directory"):
        paths.writable_dir(a_file)


def test_locustfile_class_names(tmp_path: Path) -> None:
    names = preflight.locustfile_classes(ROOT / "locustfiles" / "all_users.py")
    assert names is not None and "AsyncPymilvusUser" in names
    star = tmp_path / "star.py"
    star.write_text("from loadgen.users.pymilvus import *\n")
    assert preflight.locustfile_classes(star) is None  # cannot be told without running it: Locust decides
    preflight.user_classes(star, ["Anything"])
    with pytest.raises(LoadgenError, match=r"'Nope' is not in all_users\.py"):
        preflight.user_classes(ROOT / "locustfiles" / "all_users.py", ["PymilvusUser", "Nope"])


def test_limits_by_version() -> None:
    assert preflight.limits_for("v2.3.5-lite")["top_k"] == 16384
    assert preflight.limits_for("2.6.1")["dim"] == 32768
    assert preflight.limits_for("milvus_lite-3.2.2") == {}
