"""A runbook's recall, defined once for results.json's ``runbook`` section, the summary, the report and the checks.

- A query's recall at a search step: |its top-k hits ∩ the true top-k| / k, where the truth is exact (brute force)
  over the rows the collection holds after the steps before it (``loadgen.workload.runbook``), never the truth of
  the initial data. A step that deletes a query's true neighbours changes its truth, not its score.
- Per search step and over all of them (``recall``): the distribution of those per-query values as
  ``RecallStats.summary()`` gives it: ``mean``, ``p10`` (nearest rank: a tenth of the queries scored at or below it),
  ``min`` beside ``p1``, ``p5``, ``p50`` and ``count``; a mean of 0.9 cannot hide a tenth of the queries at 0.
- ``truth_changed``: the share of queries whose true top-k set differs from the previous search step's (``None`` at
  the first search step).
- ``--check-min-recall-p10`` holds every search step's p10 and the overall one to the threshold.
"""

from __future__ import annotations

from typing import Any

from loadgen.workload.groundtruth import RecallStats

FORMAT = "milvus-loadgen/runbook/v1"


def step_record(n: int, operation: str, label: str, rows: int, seconds: float) -> dict[str, Any]:
    return {"step": n, "operation": operation, "label": label, "rows": rows, "seconds": seconds}


def scored(record: dict[str, Any], stats: RecallStats, truth_changed: float | None) -> dict[str, Any]:
    return {**record, "recall": stats.summary(), "truth_changed": truth_changed}


def section(steps: list[dict[str, Any]], overall: RecallStats, **about: Any) -> dict[str, Any]:
    """results.json's ``runbook``: ``about`` says what was run (source, queries, k, consistency level, ...)."""
    return {"format": FORMAT, **about, "steps": steps, "recall": overall.summary()}


def _recall(r: dict[str, Any]) -> str:
    return f"recall mean {r['mean']:.4f}, p10 {r['p10']:.4f}, min {r['min']:.4f} over {r['count']} queries"


def lines(rb: dict[str, Any] | None) -> list[str]:
    """The summary's lines for a runbook section (none without one)."""
    if not rb or not rb.get("steps"):
        return []
    searches = [s for s in rb["steps"] if "recall" in s]
    out = [
        f"runbook {rb.get('source', '')}: {len(rb['steps'])} steps, {len(searches)} searches of "
        f"{rb.get('queries', 0)} queries at k={rb.get('k', '')} ({rb.get('consistency_level', '')}); truth recomputed "
        "over the rows present after each step"
    ]
    for s in rb["steps"]:
        what = f"  step {s['step']} {s['label']}: {s['rows']} rows, {s['seconds']:.2f} s"
        if "recall" in s:
            what += f"; {_recall(s['recall'])}"
            if s.get("truth_changed") is not None:
                what += f"; truth changed for {s['truth_changed']:.0%} of queries"
        out.append(what)
    out.append(f"  all searches: {_recall(rb['recall'])}")
    return out


def p10s(rb: dict[str, Any] | None) -> list[tuple[str, float]]:
    """(label, p10) of every search step: what ``--check-min-recall-p10`` holds beside the recall series (all the
    search steps together are results.json's ``recall["pymilvus search"]``, checked as a series)."""
    if not rb:
        return []
    return [(f"runbook step {s['step']}", float(s["recall"]["p10"])) for s in rb.get("steps", []) if "recall" in s]
