"""Workload files: a run's options in TOML or YAML, so a mix can be versioned and shared.

Keys are the option names of ``loadgen run`` with ``_`` or ``-`` (``dim``, ``index_type``, ``users``, ...);
``weights`` may be a table (``[weights]`` / a mapping: ``search = 8``). Flags on the command line win over the file.

    # search-heavy.toml
    users = 40
    run_time = "2m"
    index_type = "HNSW"
    consistency_level = "Bounded"
    [weights]
    search = 8
    insert = 1
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgen.errors import LoadgenError


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise LoadgenError(f"--workload {path}: cannot read it ({exc.strerror})") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise LoadgenError(f"--workload {path}: expected a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise LoadgenError(f"--workload {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError, without importing yaml for TOML files
        if isinstance(exc, LoadgenError):
            raise
        raise LoadgenError(f"--workload {path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise LoadgenError(f"--workload {path}: expected a table of option = value at the top level")
    return data


def defaults_from(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The file's options as parser defaults (so command-line flags still win); unknown keys are an error."""
    known = {a.dest: a for a in parser._actions if a.dest not in ("help", "workload")}
    out: dict[str, Any] = {}
    for key, raw in _read(path).items():
        dest = str(key).replace("-", "_")
        if dest not in known:
            raise LoadgenError(f"--workload {path}: unknown option {key!r}")
        tables = ("weights", "stream_rates")  # op = number tables, as the flags take them: op=n,op=n
        value = ",".join(f"{k}={v}" for k, v in raw.items()) if dest in tables and isinstance(raw, dict) else raw
        action = known[dest]
        convert: Callable[[str], Any] | None = action.type if callable(action.type) else None
        if convert is not None and not isinstance(value, bool):
            try:
                value = convert(str(value))  # the same conversion (and checks) as on the command line
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise LoadgenError(f"--workload {path}: {key} = {value!r}: {exc}") from None
        if action.choices is not None and value not in action.choices:
            raise LoadgenError(f"--workload {path}: {key} = {value!r}; choose one of {', '.join(action.choices)}")
        out[dest] = value
    return out
