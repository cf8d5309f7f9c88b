"""Workload files (TOML/YAML) for `loadgen run`: the file sets defaults, flags win, bad files are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from loadgen.cli.main import _parse
from loadgen.config.settings import Settings


def test_toml_sets_options_and_flags_win(tmp_path: Path) -> None:
    wl = tmp_path / "mix.toml"
    wl.write_text('users = 40\nrun_time = "2m"\ndim = 64\nindex-type = "HNSW"\nkeep_data = true\n'
                  "[weights]\nsearch = 8\ninsert = 1\n")  # fmt: skip
    args = _parse(["run", "--workload", str(wl), "--dim", "32"])
    assert (args.users, args.run_time, args.dim, args.index_type, args.keep_data) == (40, "2m", 32, "HNSW", True)
    s = Settings.from_options(args, "http://127.0.0.1:1")
    assert s.weights == {"search": 8, "insert": 1} and s.dim == 32


def test_yaml_works_too(tmp_path: Path) -> None:
    wl = tmp_path / "mix.yaml"
    wl.write_text("consistency_level: Strong\nweights:\n  search: 3\n  fanout: 0\ntop_k: 5\n")
    args = _parse(["run", "--workload", str(wl)])
    s = Settings.from_options(args, "http://127.0.0.1:1")
    assert (s.consistency_level, s.top_k, s.weights) == ("Strong", 5, {"search": 3, "fanout": 0})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("gone.toml", None, "cannot read it"),
        ("bad.toml", "users = = 3", "not valid TOML"),
        ("bad.yaml", "users: [1, 2", "not valid YAML"),
        ("mix.json", "{}", "expected a .toml, .yaml or .yml file"),
        ("unknown.toml", "frobnicate = 1", "unknown option 'frobnicate'"),
        ("value.toml", 'dim = "many"', "dim = 'many'"),
        ("choice.toml", 'index_type = "DISKANN"', "choose one of AUTOINDEX"),
        ("users.toml", "users = -3", "must be at least 1"),
        ("list.yaml", "- users: 3", "expected a table of option = value"),
        ("weights.toml", "[weights]\nfrobnicate = 2", "unknown task 'frobnicate'"),
    ],
)
def test_bad_workload_files_are_one_line_errors(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    wl = tmp_path / name
    if text is not None:
        wl.write_text(text)
    proc = run_cli(
        "run", "--host", "http://127.0.0.1:1", "--workload", str(wl), "--out", str(tmp_path / "o"), timeout=60
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadgen: error: ") and message in lines[0], proc.stderr
