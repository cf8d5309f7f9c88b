"""Sweeps: one headless run per level, like VectorDBBench's 1, 5, 10, 20, 30, 40, 60, 80 concurrency levels.

A level is ``{"users": N}`` (closed model: N users each waiting for its answer) or ``{"rate": R}`` (open model: R
requests per second on schedule). Each run's results are tagged with their level, and ``sweep.json`` holds every
level side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadgen.config.values import positive_ints, rate
from loadgen.errors import LoadgenError
from loadgen.stats import rounds

FORMAT = "milvus-loadgen/sweep/v1"


def parse_levels(text: str) -> list[int]:
    return positive_ints(text, "--sweep-users")


def parse_rates(text: str) -> list[float]:
    rates = [rate(x.strip(), "--sweep-rates") for x in text.split(",") if x.strip()]
    if not rates or min(rates) <= 0:
        raise LoadgenError(f"--sweep-rates {text!r}: expected comma-separated positive requests per second")
    return rates


def combine(levels: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """``[(level, results.json dict), ...]`` -> one document, each level's results kept whole and tagged (with
    ``--rounds``, one entry per level and round, its ``run.round`` saying which)."""
    model = "open" if any("rate" in level for level, _ in levels) else "closed"
    n = max((int(res.get("run", {}).get("rounds", 1)) for _, res in levels), default=1)
    return {"format": FORMAT, "model": model, "rounds": n,
            "levels": [{**results, "level": level} for level, results in levels]}  # fmt: skip


def _label(level: dict[str, Any]) -> str:
    return ",".join(f"{v:g}" for v in level.values())


def _value(level: dict[str, Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in level.values())


def render(sweep: dict[str, Any]) -> str:
    """Per level and request: req/s, p50, p99, failures: how throughput and latency move with the load. With
    rounds, each figure is the median of its rounds with the lowest and highest in brackets (``loadgen.stats.
    rounds``), failures summed."""
    first = "rate/s" if sweep.get("model") == "open" else "users"
    header = (first, "type", "name", "req/s", "p50 ms", "p99 ms", "fails")
    grouped: dict[tuple[tuple[float, ...], str, str], list[dict[str, Any]]] = {}
    labels: dict[tuple[float, ...], str] = {}
    for lvl in sweep["levels"]:
        labels[_value(lvl["level"])] = _label(lvl["level"])
        for m in lvl["requests"]:
            if not m["type"].endswith("-batch") and m["type"] != "embedding":
                grouped.setdefault((_value(lvl["level"]), m["type"], m["name"]), []).append(m)
    rows = []
    for (value, typ, name), ms in sorted(grouped.items(), key=lambda kv: kv[0]):
        figures = [rounds.cell(rounds.spread(v)["median"], rounds.spread(v), d) for v, d in (
            ([m["rps"] for m in ms], 1), ([m["p50_ms"] for m in ms], 3), ([m["p99_ms"] for m in ms], 3))]  # fmt: skip
        rows.append((labels[value], typ, name, *figures, str(sum(int(m["failures"]) for m in ms))))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in (0, 3, 4, 5, 6) else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    if sweep.get("rounds", 1) > 1:
        lines.append(f"(medians of {sweep['rounds']} rounds, lowest-highest round in brackets)")
    return "\n".join(lines)


def write(out: Path, sweep: dict[str, Any]) -> Path:
    path = out / "sweep.json"
    path.write_text(json.dumps(sweep, indent=2))
    return path
