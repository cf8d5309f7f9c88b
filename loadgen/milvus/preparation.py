"""Where the preparation of a run stands: which collection, which step, rows done of how many.

Every step that prepares a collection (fill, index, load, ground truth) reports here, and the terminal's progress bars
are drawn from the same calls (``bar``), so the web UI's page (``loadgen.web``) shows what the terminal shows while a
start from the form fills and indexes its collections. One board per process: preparation runs on the master (or
the local runner) only, one step at a time.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Step:
    collection: str
    what: str  # "filling", "waiting for the index", "loading", "computing the ground truth", ...
    done: int = 0
    total: int = 0  # 0: a step without a count
    unit: str = "rows"
    since: float = 0.0  # time.time() when the step began

    def text(self) -> str:
        count = f" {self.done:,} of {self.total:,} {self.unit}" if self.total else ""
        return f"{self.what} {self.collection}{count} ({time.time() - self.since:.0f} s)"


class _Board:
    step: Step | None = None
    active = False  # between begin() and end(): a preparation is under way


def begin() -> None:
    """A preparation starts (the steps it reports follow)."""
    _Board.active, _Board.step = True, None


def end() -> None:
    _Board.active, _Board.step = False, None


def step(collection: str, what: str, total: int = 0, unit: str = "rows") -> Step:
    """The current step is now ``what`` on ``collection``; returns it (``done`` is advanced by ``bar``)."""
    _Board.step = Step(collection, what, 0, total, unit, time.time())
    return _Board.step


def current() -> dict[str, Any] | None:
    """The preparation under way, for a page: None when none is; else its step (or none yet) and a line of text."""
    if not _Board.active:
        return None
    s = _Board.step
    return {"step": asdict(s) if s else None, "text": s.text() if s else "checking the collections"}


class _Bar:
    """What ``bar`` yields: ``update(n)`` advances the terminal's bar and the board's step alike."""

    def __init__(self, tqdm_bar: Any, s: Step) -> None:
        self._bar, self._step = tqdm_bar, s

    def update(self, n: int) -> None:
        self._bar.update(n)
        self._step.done += n


@contextlib.contextmanager
def bar(collection: str, total: int, *, unit: str = "rows", enabled: bool = True) -> Iterator[_Bar]:
    """A fill of ``total`` rows into ``collection``: a tqdm bar on stderr (unless ``enabled`` is False) and the
    board's step."""
    from tqdm import tqdm

    s = step(collection, "filling", total, unit)
    with tqdm(total=total, desc=f"filling {collection}", unit=unit, disable=not enabled, file=sys.stderr) as b:
        yield _Bar(b, s)
