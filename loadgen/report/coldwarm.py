"""The report's "Cold and warm" section, from the ``coldwarm.json`` of ``loadgen coldwarm`` (``loadgen.milvus.coldwarm``
defines its figures): found beside a run's results, or given as a folder or file of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadgen.errors import LoadgenError
from loadgen.milvus.coldwarm import FILE, FORMAT, SETTLED, lines


def read(path: Path) -> dict[str, Any] | None:
    """The coldwarm document at ``path`` (the file, or one in the folder), or None."""
    found = path if path.is_file() and path.name == FILE else path / FILE if path.is_dir() else None
    if found is None or not found.is_file():
        return None
    try:
        doc = json.loads(found.read_text())
    except (OSError, ValueError) as exc:
        raise LoadgenError(f"{found}: not readable as JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LoadgenError(f"{found}: not a loadgen coldwarm document (format {FORMAT})")
    return {**doc, "source": str(found)}


def alone(path: Path) -> bool:
    """Whether ``path`` holds a coldwarm document and no run's results."""
    if read(path) is None:
        return False
    return path.is_file() or not any(path.rglob("results.json"))


def table(docs: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("event", "first success s", "failed before", "first search ms", "first second p99 ms",
              f"p99 within {SETTLED:g}x warm after s", "warm p99 ms")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for doc in docs:
        warm = f"{(doc.get('warm') or {}).get('p99_ms', 0.0):.2f}"
        for e in doc.get("events", []):
            first = e.get("first_success_s")
            rows.append((
                e["event"], "none" if first is None else f"{first:.2f}", str(e.get("failures", 0)),
                "" if e.get("first_ms") is None else f"{e['first_ms']:.1f}", f"{e.get('first_window_p99_ms', 0):.1f}",
                "never" if e.get("settle_s") is None else f"{e['settle_s']:g}", warm,
            ))  # fmt: skip
    return header, rows


def text(docs: list[dict[str, Any]]) -> list[str]:
    out = [
        "Serial searches (one at a time) after the collection was released and loaded again, and after the server "
        "restarted, against the same searches on the warm collection. First success: seconds from the release "
        "(or the restart command) to the first search that answered. Settled: seconds from then to the first "
        f"second from which on the p99 stays within {SETTLED:g}x the warm p99 (+1 ms).",
    ]
    for doc in docs:
        out += [f"{doc['source']}: " + line for line in lines(doc)]
        if str(doc.get("restart", "")).startswith("not measured"):
            out.append(f"Restart: {doc['restart']}.")
    return out
