"""A runbook: steps that change what a collection holds (insert, delete, replace) and search steps scored against
the exact ground truth over the rows present at that moment, as big-ann-benchmarks' streaming runbooks do.

Rows are a dataset's (``--dataset``): id i holds the base vector of row ``source[i]``; an insert of ids a..b-1 gives
them rows a..b-1, a replace of ids a..b-1 gives them rows f..f+(b-a)-1 (big-ann's ``tags_start``/``ids_start``).
Every step is checked against what the collection would hold before anything is written (an insert of an id
present, a delete of an id absent, a search over fewer rows than ``--top-k``: one line each).

Two spellings, one list of steps: inline (``insert:0:5000,search,delete:0:1000,replace:1000:2000:8000,search``), or
a YAML/JSON file: ``{"steps": [{"operation": "insert", "start": 0, "end": 5000}, {"operation": "search"}, ...]}``;
a delete may name ``ids: [...]`` instead of a range; a big-ann runbook's body (``{1: {operation: insert, ...}}``) is
read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.errors import LoadgenError
from loadgen.workload.groundtruth import DISTANCE_BUDGET, check_metric, row_norms
from loadgen.workload.truth import fold_top_k

OPERATIONS = ("insert", "delete", "replace", "search")
ABSENT = -1


@dataclass(frozen=True)
class Step:
    operation: str
    ids: np.ndarray  # int64: the ids written or deleted (empty for a search)
    source: np.ndarray  # int64: the dataset row each written id takes (empty for delete and search)

    @property
    def label(self) -> str:
        if self.operation == "search":
            return "search"
        span = _span(self.ids)
        if self.operation == "replace":
            return f"replace {span} with dataset rows {_span(self.source).removeprefix('ids ')}"
        return f"{self.operation} {span}"


def _span(ids: np.ndarray) -> str:
    if len(ids) and int(ids[-1]) - int(ids[0]) + 1 == len(ids) and bool(np.all(np.diff(ids) == 1)):
        return f"ids {int(ids[0])}..{int(ids[-1])}"
    return f"{len(ids)} ids"


def _range(start: Any, end: Any, where: str) -> np.ndarray:
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise LoadgenError(f"{where}: start and end must be integers, got {start!r} and {end!r}")
    if not 0 <= start < end:
        raise LoadgenError(f"{where}: expected 0 <= start < end, got {start}..{end}")
    return np.arange(start, end, dtype=np.int64)


def make_step(entry: dict[str, Any], where: str) -> Step:
    """One step from its mapping (``operation`` or ``op``; ``start``/``end``, or big-ann's ``tags_start``/
    ``tags_end``/``ids_start`` for a replace; ``ids`` for a delete; ``from`` for a replace)."""
    op = entry.get("operation", entry.get("op"))
    if op not in OPERATIONS:
        raise LoadgenError(f"{where}: unknown operation {op!r}; use one of {', '.join(OPERATIONS)}")
    empty = np.empty(0, dtype=np.int64)
    if op == "search":
        return Step("search", empty, empty)
    if op == "delete" and "ids" in entry:
        raw = entry["ids"]
        if not isinstance(raw, list) or not raw or not all(isinstance(i, int) and i >= 0 for i in raw):
            raise LoadgenError(f"{where}: ids must be a non-empty list of ids (integers >= 0)")
        return Step("delete", np.unique(np.asarray(raw, dtype=np.int64)), empty)
    start, end = entry.get("start", entry.get("tags_start")), entry.get("end", entry.get("tags_end"))
    ids = _range(start, end, where)
    if op == "delete":
        return Step("delete", ids, empty)
    if op == "insert":
        return Step("insert", ids, ids.copy())
    first = entry.get("from", entry.get("ids_start"))
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise LoadgenError(f"{where}: a replace needs 'from' (the first dataset row of the new vectors), got {first!r}")
    return Step("replace", ids, np.arange(first, first + len(ids), dtype=np.int64))


def parse_inline(text: str) -> list[Step]:
    """``insert:0:5000,search,delete:0:1000,replace:START:END:FROM``."""
    steps = []
    for n, part in enumerate((p.strip() for p in text.split(",")), start=1):
        fields = part.split(":")
        where = f"--steps step {n} ({part!r})"
        try:
            numbers = [int(f) for f in fields[1:]]
        except ValueError:
            raise LoadgenError(f"{where}: expected operation:start:end, numbers after the operation") from None
        wanted = {"search": 0, "insert": 2, "delete": 2, "replace": 3}.get(fields[0])
        if wanted is not None and len(numbers) != wanted:
            raise LoadgenError(f"{where}: {fields[0]} takes {wanted} numbers, got {len(numbers)}")
        keys = ("start", "end", "from")
        steps.append(make_step({"operation": fields[0], **dict(zip(keys, numbers, strict=False))}, where))
    return steps


def load_file(path: Path) -> list[Step]:
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data: Any = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except OSError as exc:
        raise LoadgenError(f"--runbook {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # json.JSONDecodeError or yaml.YAMLError
        raise LoadgenError(f"--runbook {path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    entries: Any = data.get("steps") if isinstance(data, dict) and "steps" in data else data
    if isinstance(entries, dict):  # big-ann's numbered steps (max_pts and other keys are not steps)
        entries = [entries[k] for k in sorted((k for k in entries if str(k).isdigit()), key=int)]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise LoadgenError(f'--runbook {path}: expected a list of steps, e.g. {{"steps": [{{"operation": ...}}]}}')
    return [make_step(e, f"--runbook {path} step {n}") for n, e in enumerate(entries, start=1)]


def check(steps: list[Step], dataset_rows: int, k: int) -> None:
    """Play the steps on paper: what each would do to the collection, refused in one line if it cannot be done."""
    if not any(s.operation == "search" for s in steps):
        raise LoadgenError("the runbook has no search step: nothing would be scored")
    held = State(max((int(s.ids.max()) + 1 for s in steps if len(s.ids)), default=0))
    for n, step in enumerate(steps, start=1):
        where = f"runbook step {n} ({step.label})"
        if len(step.source) and int(step.source.max()) >= dataset_rows:
            raise LoadgenError(f"{where}: needs dataset row {int(step.source.max())}, the dataset has {dataset_rows}")
        present = held.source[step.ids] != ABSENT if len(step.ids) else np.empty(0, dtype=bool)
        if step.operation == "insert" and present.any():
            raise LoadgenError(f"{where}: id {int(step.ids[present][0])} is already present (use replace)")
        if step.operation in ("delete", "replace") and not present.all():
            raise LoadgenError(f"{where}: id {int(step.ids[~present][0])} is not present at this step")
        if step.operation == "search" and held.count < k:
            raise LoadgenError(f"{where}: the collection holds {held.count} rows, fewer than --top-k {k}")
        held.apply(step)


class State:
    """What the collection holds: for each id, the dataset row whose vector it has (``ABSENT``: none)."""

    def __init__(self, ids: int) -> None:
        self.source = np.full(ids, ABSENT, dtype=np.int64)

    @property
    def count(self) -> int:
        return int((self.source != ABSENT).sum())

    def apply(self, step: Step) -> None:
        if step.operation == "delete":
            self.source[step.ids] = ABSENT
        elif step.operation in ("insert", "replace"):
            self.source[step.ids] = step.source

    def present(self) -> np.ndarray:
        return np.flatnonzero(self.source != ABSENT).astype(np.int64)


def exact_top_k(queries: np.ndarray, base: np.ndarray, state: State, k: int, metric: str) -> np.ndarray:
    """True top-k ids [queries, k] over the rows ``state`` holds (their vectors: ``base[state.source[id]]``),
    brute force in chunks as ``loadgen.workload.groundtruth`` computes a dataset's; ties go to the lower id."""
    metric = check_metric(metric)
    q = queries.astype(np.float64)
    if metric == "COSINE":
        q /= row_norms(q)
    ids = state.present()
    chunk = max(1024, DISTANCE_BUDGET // max(len(q), 1))
    best_d, best_i = np.empty((len(q), 0)), np.empty((len(q), 0), dtype=np.int64)
    q_sq = (q**2).sum(axis=1)[:, None]
    for first in range(0, len(ids), chunk):
        part = ids[first : first + chunk]
        best_d, best_i = fold_top_k(best_d, best_i, q, q_sq, base[state.source[part]], ids=part, metric=metric, k=k)
    order = np.lexsort((best_i, best_d), axis=1)
    return np.ascontiguousarray(np.take_along_axis(best_i, order, axis=1))
