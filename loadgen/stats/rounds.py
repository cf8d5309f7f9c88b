"""Rounds: each level of a sweep (or each step of a capacity search) measured ``--rounds N`` times, so a figure
comes with its run-to-run spread and a before/after change can be told from noise.

A sweep's rounds are interleaved, levels ascending then descending (1 5 10, 10 5 1, 1 5 10 ...): a slow drift of
the machine or the server then touches every level alike instead of the last ones. The one definition of a figure
over rounds is here: its median, and its spread, the lowest and highest round. A before/after delta lies inside the
spread when the two sides' ranges overlap: the change is no larger than what repeating the run already moved.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def schedule(levels: Sequence[T], rounds: int) -> list[tuple[int, T]]:
    """``(round, level)`` in the order they run: round 1 ascending, round 2 descending, and so on."""
    order: list[tuple[int, T]] = []
    for r in range(1, rounds + 1):
        order += [(r, level) for level in (levels if r % 2 else list(reversed(levels)))]
    return order


def spread(values: Sequence[float]) -> dict[str, float]:
    """A figure over its rounds: the median (what the report shows) and the lowest and highest round."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def overlap(a: dict[str, float] | None, b: dict[str, float] | None) -> bool | None:
    """Whether two spreads overlap (a delta between their medians is inside run-to-run noise); None when either
    side has one round only (its spread is unknown)."""
    if not a or not b or a.get("rounds", 1) < 2 or b.get("rounds", 1) < 2:
        return None
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def cell(value: float, s: dict[str, Any] | None, digits: int) -> str:
    """A figure for a table: ``12.31`` or, over rounds, ``12.31 (11.90-13.02)``."""
    text = f"{value:,.{digits}f}"
    if s and s.get("rounds", 1) > 1:
        text += f" ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"
    return text
