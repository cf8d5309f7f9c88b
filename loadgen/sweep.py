"""Concurrency sweeps: one headless run per level (like VectorDBBench's 1, 5, 10, 20, 30, 40, 60, 80 users), each
run's results tagged with its level, and one ``sweep.json`` with every level side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadgen.settings import positive_ints

FORMAT = "milvus-loadgen/sweep/v1"


def parse_levels(text: str) -> list[int]:
    return positive_ints(text, "--sweep-users")


def combine(levels: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """``[(users, results.json dict), ...]`` -> one document, each level's results kept whole and tagged."""
    return {
        "format": FORMAT,
        "model": "closed",
        "levels": [{"level": {"users": users}, **results} for users, results in levels],
    }


def render(sweep: dict[str, Any]) -> str:
    """Per level and request: req/s, p50, p99, failures: how throughput and latency move with concurrency."""
    header = ("users", "type", "name", "req/s", "p50 ms", "p99 ms", "fails")
    rows = [
        (str(lvl["level"]["users"]), m["type"], m["name"], f"{m['rps']:.1f}", f"{m['p50_ms']:.3f}",
         f"{m['p99_ms']:.3f}", str(m["failures"]))
        for lvl in sweep["levels"]
        for m in lvl["requests"]
        if not m["type"].endswith("-batch") and m["type"] != "embedding"
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in (0, 3, 4, 5, 6) else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write(out: Path, sweep: dict[str, Any]) -> Path:
    path = out / "sweep.json"
    path.write_text(json.dumps(sweep, indent=2))
    return path
