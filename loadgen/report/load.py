"""Read loadgen results from wherever they landed (a local ``--out`` dir, a sweep dir, files copied out of Kubernetes
Jobs) into one flat list of ``Run``s, and refuse input a report cannot honestly combine.

Accepted paths: a ``results.json`` or ``sweep.json`` file, a run dir holding ``results.json``, a sweep dir holding
``sweep.json`` (its levels are used; the per-level dirs repeat them), or any dir under which ``results.json`` files
lie (e.g. one per Job pod). Missing fields are treated as absent: older results have no levels, models or replicas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.errors import LoadgenError

RESULTS_FORMAT = "milvus-loadgen/results/v2"
RESULTS_FORMATS = ("milvus-loadgen/results/v1", RESULTS_FORMAT)  # v1: before request rows were store calls only
SWEEP_FORMAT = "milvus-loadgen/sweep/v1"
# what makes two runs measure "the same data": mixing these in one curve would compare unlike things
DATASET_KEYS = ("dataset", "dim", "rows", "metric_type")


@dataclass(frozen=True)
class Run:
    """One measured level: a results.json document and where it came from."""

    source: str  # the path the user gave (for labels and error messages)
    results: dict[str, Any] = field(repr=False)

    @property
    def run(self) -> dict[str, Any]:
        value = self.results.get("run")
        return value if isinstance(value, dict) else {}

    @property
    def settings(self) -> dict[str, Any]:
        value = self.results.get("settings")
        return value if isinstance(value, dict) else {}

    @property
    def level(self) -> tuple[str, float]:
        """("users", N) for closed-model runs, ("rate", R) for open-model (arrival-rate) runs, ("insert-rate", R) for
        the steps of ``loadgen capacity --max-index-lag-s`` (the insert stream's rate beside the searches)."""
        lvl = self.run.get("level")
        if isinstance(lvl, dict) and isinstance(self.run.get("insert_rate"), int | float):
            return "insert-rate", float(self.run["insert_rate"])  # a step of capacity's ingest search: its inserts/s
        if isinstance(lvl, dict):
            for kind in ("rate", "users"):
                if isinstance(lvl.get(kind), int | float):
                    return kind, float(lvl[kind])
        open_loop = self.results.get("open_loop")
        if self.run.get("model") == "open" and isinstance(open_loop, dict):
            rate = open_loop.get("target_rate")
            if isinstance(rate, int | float):
                return "rate", float(rate)
        users = self.run.get("users")
        return "users", float(users) if isinstance(users, int | float) else 0.0

    @property
    def processes(self) -> int:
        """Locust worker processes: ``--processes`` locally (0, no workers, counts as 1), ``--expect-workers`` in a
        Kubernetes Job (``loadgen k8s summarize`` records it as run.expect_workers)."""
        for key in ("processes", "expect_workers"):
            value = self.run.get(key)
            if isinstance(value, int | float) and value > 0:
                return int(value)
        return 1

    @property
    def replicas(self) -> int | None:
        """Milvus replicas the run was measured against, where the results say so (a later results field)."""
        for where in (self.run, self.settings):
            value = where.get("replicas")
            if isinstance(value, int | float) and value >= 1:
                return int(value)
        return None

    def dataset(self) -> tuple[Any, ...]:
        s = self.settings
        return tuple(s.get(k) or ("generated" if k == "dataset" else None) for k in DATASET_KEYS)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadgenError(f"{path}: not readable JSON ({type(exc).__name__}); expected loadgen results") from None


def _results(doc: Any, where: Path) -> dict[str, Any]:
    known = isinstance(doc, dict) and doc.get("format") in RESULTS_FORMATS
    if not known or not isinstance(doc.get("requests"), list):
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise LoadgenError(
            f"{where} is not a milvus-loadgen results file (format {found!r}, expected {RESULTS_FORMAT})"
        )
    return doc


def _sweep(path: Path, label: str) -> list[Run]:
    doc = _read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != SWEEP_FORMAT or not isinstance(doc.get("levels"), list):
        raise LoadgenError(f"{path} is not a milvus-loadgen sweep file (expected format {SWEEP_FORMAT})")
    runs = []
    for i, lvl in enumerate(doc["levels"]):
        res = _results(lvl, Path(f"{path}[levels][{i}]"))
        res = {**res, "run": {**res.get("run", {}), "level": lvl.get("level", res.get("run", {}).get("level"))}}
        runs.append(Run(label, res))
    return runs


def load_path(path: Path) -> list[Run]:
    """Every run below one user-given path; a one-line error when there is none or it is not ours."""
    label = str(path)
    if not path.exists():
        raise LoadgenError(f"{path}: no such file or directory")
    if path.is_file():
        if path.name == "sweep.json":
            return _sweep(path, label)
        return [Run(label, _results(_read_json(path), path))]
    if (path / "sweep.json").is_file():
        return _sweep(path / "sweep.json", label)
    if (path / "results.json").is_file():
        return [Run(label, _results(_read_json(path / "results.json"), path / "results.json"))]
    found = sorted(path.rglob("results.json"))
    if not found:
        raise LoadgenError(f"{path}: no loadgen results in it (expected results.json, sweep.json or users-N/ dirs)")
    runs: list[Run] = []
    sweeps = sorted(p.parent for p in path.rglob("sweep.json"))
    for f in found:
        if any(f.is_relative_to(s) for s in sweeps):
            continue  # a sweep's per-level dir: its sweep.json already holds this level
        runs.append(Run(str(f.parent), _results(_read_json(f), f)))
    for s in sweeps:
        runs += _sweep(s / "sweep.json", str(s))
    return runs


def load(paths: list[Path]) -> list[Run]:
    """All runs of ``paths``; every run must be of the same dataset (see ``DATASET_KEYS``)."""
    runs = [r for p in paths for r in load_path(p)]
    if not runs:
        raise LoadgenError("no results given")
    check_same_dataset(runs)
    return runs


def check_same_dataset(runs: list[Run]) -> None:
    first = runs[0]
    for other in runs[1:]:
        if other.dataset() != first.dataset():
            diff = ", ".join(
                f"{k} {a!r} vs {b!r}"
                for k, a, b in zip(DATASET_KEYS, first.dataset(), other.dataset(), strict=True)
                if a != b
            )
            raise LoadgenError(
                f"results of different datasets in one report: {first.source} and {other.source} differ in {diff}; "
                "report them separately"
            )
