"""``loadgen runbook``: change the data in steps (insert, delete, replace) and score every search step against the
exact truth over the rows present after the steps before it (``loadgen.workload.runbook``; the figures:
``loadgen.stats.runbook``). Its own experiment, like ``loadgen compare``: one client, no Locust, a collection of its
own created empty and dropped after (``--keep-data`` keeps it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from loadgen.cli import preflight
from loadgen.cli.common import milvus, quiet_clients, terminate_on_sigterm
from loadgen.config import paths
from loadgen.config.settings import Settings, add_option, add_options, normalize_uri
from loadgen.errors import LoadgenError
from loadgen.milvus import collection, readiness
from loadgen.milvus.server import ENGINES
from loadgen.stats import checks, figures, results, timing
from loadgen.stats import runbook as figures_rb
from loadgen.stats.histograms import LatencyHistograms
from loadgen.workload import runbook, truth
from loadgen.workload.groundtruth import RecallStats, recall_at_k
from loadgen.workload.rows import dataset_rows

LAYER = "pymilvus"  # the request rows' type: the calls are MilvusClient's
WRITE_BATCH = 1000  # rows (or ids) per insert, upsert or delete call
SEARCH_BATCH = 50  # query vectors per search call
DEFAULT_DATASET = "synthetic:clustered"


def add_parser(sub: Any) -> None:
    rb = sub.add_parser("runbook", help="change the data in steps; recall per step against the truth of each step")
    rb.add_argument("--host", help="Milvus URI (default: start an embedded Milvus)")
    rb.add_argument("--steps", help="inline steps, e.g. insert:0:5000,search,delete:0:1000,replace:0:100:9000,search")
    rb.add_argument("--runbook", type=Path, help="the steps as a YAML or JSON file (README: Recall while data changes)")
    rb.add_argument("--search-queries", type=int, default=100, help="query vectors per search step (default 100)")
    rb.add_argument(
        "--index-steps", action="store_true",
        help="after every write step: flush, wait for the index to cover every row, load the indexed segments",
    )  # fmt: skip
    rb.add_argument("--out", type=Path, help="output directory (default results/runbook-<timestamp>)")
    rb.add_argument("--engine", choices=ENGINES, default="milvus")
    rb.add_argument("--startup-timeout", type=float, default=120.0)
    add_options(rb, locust=False, load=False)
    add_option(rb, "check_min_recall_p10")
    # the truth is what the collection holds: searches see every acknowledged write unless told otherwise
    rb.set_defaults(consistency_level="Strong")


def _steps(args: argparse.Namespace) -> list[runbook.Step]:
    if bool(args.steps) == bool(args.runbook):
        raise LoadgenError("loadgen runbook: pass the steps as --steps or as a --runbook file (one of them)")
    return runbook.parse_inline(args.steps) if args.steps else runbook.load_file(args.runbook)


class _Calls:
    """The store calls' request rows: counts and microsecond histograms, one window."""

    def __init__(self) -> None:
        self.latency = LatencyHistograms()
        self.counts: dict[str, int] = {}
        self.first: float | None = None
        self.last = 0.0

    def call(self, name: str, fn: Any, *args: Any, step: int) -> Any:
        sample = timing.measure(fn, *args)
        self.first = sample.start if self.first is None else self.first
        self.last = sample.start + sample.elapsed_ms / 1000.0
        self.counts[name] = self.counts.get(name, 0) + 1
        if sample.error is not None:  # the truth would no longer be what the collection holds: stop here
            raise LoadgenError(f"runbook step {step}: {name} failed: {collection.server_message(sample.error)}")
        self.latency.record(LAYER, name, sample.elapsed_ms)
        return sample.value

    def rows(self) -> tuple[list[dict[str, Any]], float]:
        window = self.last - self.first if self.first is not None else 0.0
        rows = [
            figures.request_row(LAYER, name, requests=n, failures=0, length=0, window=window, latency=self.latency)
            for name, n in sorted(self.counts.items())
        ]
        return rows, window


def _write(client: MilvusClient, s: Settings, step: runbook.Step, base: np.ndarray, *, calls: _Calls, n: int) -> None:
    for first in range(0, len(step.ids), WRITE_BATCH):
        ids, src = step.ids[first : first + WRITE_BATCH], step.source[first : first + WRITE_BATCH]
        if step.operation == "delete":
            calls.call("delete", lambda i=ids: client.delete(s.collection, ids=i.tolist(), timeout=s.timeout), step=n)
            continue
        rows = dataset_rows(int(ids[0]), base[src], s.seed)  # writes are ranges: ids[0].. in order
        name = "insert" if step.operation == "insert" else "upsert"
        fn = getattr(client, name)
        calls.call(name, lambda r=rows, f=fn: f(s.collection, r, timeout=s.timeout), step=n)


def _search(client: MilvusClient, s: Settings, queries: np.ndarray, calls: _Calls, n: int) -> list[list[int]]:
    params = {"metric_type": s.metric_type, "params": collection.search_params(s)}
    hits: list[list[int]] = []
    for first in range(0, len(queries), SEARCH_BATCH):
        batch = queries[first : first + SEARCH_BATCH].tolist()
        found = calls.call(
            "search",
            lambda b=batch: client.search(s.collection, data=b, limit=s.top_k, search_params=params,
                                          consistency_level=s.consistency_level, timeout=s.timeout),
            step=n,
        )  # fmt: skip
        hits += [[int(h["id"]) for h in per_query] for per_query in found]
    return hits


def play(settings: Settings, steps: list[runbook.Step], queries: np.ndarray, base: np.ndarray, *,
         index: bool, log: Any = None) -> tuple[list[dict[str, Any]], RecallStats, _Calls]:  # fmt: skip
    """Run the steps against ``settings.collection`` (created empty by the caller)."""
    state = runbook.State(max((int(s.ids.max()) + 1 for s in steps if len(s.ids)), default=0))
    calls, overall, records = _Calls(), RecallStats(), []
    previous: np.ndarray | None = None
    client = collection.connect(settings)
    try:
        for n, step in enumerate(steps, start=1):
            started = time.perf_counter()
            if step.operation == "search":
                true_ids = runbook.exact_top_k(queries, base, state, settings.top_k, settings.metric_type)
                hits = _search(client, settings, queries, calls, n)
                stats = RecallStats()
                stats.extend(recall_at_k(h, t, settings.top_k) for h, t in zip(hits, true_ids, strict=True))
                overall.merge(stats)
                changed = None if previous is None else float(np.mean([
                    set(a.tolist()) != set(b.tolist()) for a, b in zip(previous, true_ids, strict=True)
                ]))  # fmt: skip
                previous = true_ids
                record = figures_rb.step_record(n, step.operation, step.label, state.count,
                                                time.perf_counter() - started)  # fmt: skip
                records.append(figures_rb.scored(record, stats, changed))
            else:
                _write(client, settings, step, base, calls=calls, n=n)
                state.apply(step)
                if index:  # searches then run on the index, not on growing segments searched without it
                    readiness.wait_until_indexed(client, settings, settings.collection, "vector", owned=True)
                records.append(figures_rb.step_record(n, step.operation, step.label, state.count,
                                                      time.perf_counter() - started))  # fmt: skip
            if log is not None:
                log(figures_rb.lines({"steps": [records[-1]], "recall": overall.summary()})[1])
    finally:
        client.close()
    return records, overall, calls


def _base(dataset: Any, steps: list[runbook.Step]) -> np.ndarray:
    """The dataset rows the steps use (all rows up to the highest one named), float32."""
    needed = max((int(s.source.max()) + 1 for s in steps if len(s.source)), default=0)
    parts = []
    for first, vectors in dataset.iter_base(10_000):
        if first >= needed:
            break
        parts.append(np.asarray(vectors[: needed - first], dtype=np.float32))
    return np.concatenate(parts) if parts else np.empty((0, dataset.dim), dtype=np.float32)


def command(args: argparse.Namespace) -> int:
    steps = _steps(args)
    if args.search_queries < 1:
        raise LoadgenError(f"--search-queries must be at least 1, got {args.search_queries}")
    quiet_clients()
    settings = Settings.from_options(args, args.host or "http://127.0.0.1:19530")
    if settings.filter:
        raise LoadgenError("loadgen runbook scores unfiltered searches: leave out --filter and --filter-selectivity")
    if args.collection == "loadgen_bench":  # the default: a runbook's collection gets its own name
        settings = dataclasses.replace(settings, collection="loadgen_runbook")
    settings = dataclasses.replace(settings, dataset=settings.dataset or DEFAULT_DATASET)
    dataset = truth.open_for(settings)
    queries = dataset.queries()[: args.search_queries]
    runbook.check(steps, dataset.count, settings.top_k)  # on paper, before any server is started or touched
    out = (args.out or Path("results") / time.strftime("runbook-%Y%m%d-%H%M%S")).resolve()
    preflight.path_options(args, settings)
    paths.writable_dir(out)
    base = _base(dataset, steps)
    terminate_on_sigterm()
    with milvus(args) as (host, _keep):
        settings = dataclasses.replace(settings, uri=normalize_uri(host))
        version = collection.create_empty(settings)
        print(f"loadgen: Milvus {version} at {collection.redact_uri(settings.uri)}", file=sys.stderr)
        try:
            records, overall, calls = play(settings, steps, queries, base, index=args.index_steps,
                                           log=lambda m: print(m, file=sys.stderr))  # fmt: skip
        finally:
            collection.release(settings, settings.collection)
    doc = _results(args, settings, version, records=records, overall=overall, calls=calls, queries=len(queries))
    set_checks = checks.from_settings(settings)
    failed = checks.evaluate(set_checks, doc)
    doc["checks"] = {"set": set_checks.__dict__, "failed": failed}
    paths.make_dir(out)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    print(results.render_table(doc))
    print(f"\nresults: {out / 'results.json'}")
    return checks.exit_code(failed)


def _results(args: argparse.Namespace, settings: Settings, version: str, *, records: list[dict[str, Any]],
             overall: RecallStats, calls: _Calls, queries: int) -> dict[str, Any]:  # fmt: skip
    public = settings.public()
    public["uri"] = collection.redact_uri(public["uri"])
    rows, window = calls.rows()
    source = str(args.runbook) if args.runbook else "--steps " + args.steps
    section = figures_rb.section(
        records, overall, source=source, queries=queries, k=settings.top_k,
        consistency_level=settings.consistency_level, index_steps=args.index_steps,
    )  # fmt: skip
    return {
        "format": results.FORMAT,
        "run": {"mode": "runbook", "users": 1, "model": "closed", "server_version": version,
                "embedded": not args.host, "percentiles_from": "hdr",
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "settings": public,
        "requests": rows,
        "totals": figures.totals(rows, window),
        "failures": [],
        "recall": {f"{LAYER} search": {**overall.summary()}},
        "runbook": section,
    }  # fmt: skip
