"""When a run's figures begin: the resets of its statistics, recorded once for results.json's ``run.warmup``, and the
one line the summary, the web UI's tab and the report show.

A reset comes from Locust's ``--reset-stats`` (at the end of spawning), the web UI's Reset Stats button, or
loadgen's ``--warmup`` (at the end of the warm-up window); ``loadgen.locust.warmup`` makes every statistic follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# what reset the statistics -> how the summary says it
CAUSES = {
    "warmup": "--warmup",
    "reset-stats": "--reset-stats, at the end of spawning",
    "web-ui": "the web UI's Reset Stats",
    "reset_all": "a call of Locust's stats.reset_all",
}


@dataclass
class ResetRecord:
    """The current test's resets, on the master or local runner (wall-clock times)."""

    warmup_s: float = 0.0  # --warmup asked for
    started_at: float | None = None  # the test's start
    count: int = 0
    last_by: str = ""  # a key of CAUSES
    last_at: float | None = None

    def reset(self, by: str, at: float) -> None:
        self.count += 1
        self.last_by, self.last_at = by, at

    def section(self) -> dict[str, Any]:
        """results.json's ``run.warmup``: {} when nothing was asked for and nothing reset the figures."""
        if not self.warmup_s and not self.count:
            return {}
        out: dict[str, Any] = {"warmup_s": self.warmup_s, "resets": self.count}
        if self.count and self.last_at is not None:
            after = self.last_at - self.started_at if self.started_at is not None else None
            out.update(by=self.last_by, after_s=round(after, 3) if after is not None else None)
        return out


def line(run: dict[str, Any]) -> str:
    """What the figures beside it leave out, in one line ("" when they cover the whole run)."""
    w = run.get("warmup")
    if not isinstance(w, dict) or not w:
        return ""
    asked = float(w.get("warmup_s") or 0.0)
    if not w.get("resets"):
        return f"warm-up: --warmup {asked:g}s never ended (the run stopped first): the figures cover the whole run"
    after = w.get("after_s")
    when = f"the first {after:.1f} s" if isinstance(after, int | float) else "what came before the reset"
    by = CAUSES.get(str(w.get("by")), str(w.get("by")))
    more = f"; {w['resets']} resets, the figures count from the last" if int(w["resets"]) > 1 else ""
    return f"warm-up: {when} left out of every figure (reset by {by}{more})"


def report_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The report's: each distinct line once, with how many of the measured levels it applies to."""
    found: dict[str, int] = {}
    for run in runs:
        if said := line(run):
            found[said] = found.get(said, 0) + 1
    return [f"{said} ({n} of {len(runs)} levels)" if len(runs) > 1 else said for said, n in sorted(found.items())]
