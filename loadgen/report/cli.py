"""``loadgen report RESULTS...``: read runs, analyse, size, compare, and write report.html, report.md and
report.json. ``loadgen.cli.main`` only registers the subparser and calls ``run``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from loadgen.config import paths
from loadgen.errors import LoadgenError
from loadgen.report import coldwarm, cost, sizing
from loadgen.stats import resets

FORMAT = "milvus-loadgen/report/v1"
INDEXES = ("AUTOINDEX", "HNSW", "IVF_FLAT", "FLAT")


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="capacity report (HTML, Markdown, JSON) from results of runs and sweeps")
    rep.add_argument("results", nargs="+", type=Path, help="results dirs, sweep dirs, results.json or sweep.json files")
    rep.add_argument("--out", type=Path, help="output directory (default results/report-<timestamp>)")
    rep.add_argument("--title", default="milvus-loadgen capacity report")
    # one path per flag (repeatable), so `loadgen report --baseline OLD NEW` reads as "OLD before, NEW after"
    rep.add_argument("--baseline", action="append", type=Path, help="results to compare against (before); repeatable")
    rep.add_argument("--slo-p99-ms", type=float, help="p99 latency SLO: report the highest QPS that holds it")
    rep.add_argument("--max-error-rate", type=float, default=0.01, help="error share a level may have to count (0.01)")
    size = rep.add_argument_group("sizing (needs --target-qps)")
    size.add_argument("--target-qps", type=float, help="QPS the cluster must serve")
    size.add_argument("--vectors", type=int, help="vectors in the collection (default: the runs' --rows)")
    size.add_argument("--dim", type=int, help="vector dimension (default: the runs' --dim)")
    size.add_argument("--index", choices=INDEXES, help="index type (default: the runs' --index-type)")
    size.add_argument("--index-params", help='index build params as JSON, e.g. {"M": 32} (default: the runs\')')
    size.add_argument("--headroom", type=float, default=sizing.DEFAULT_HEADROOM, help="share of capacity kept free")
    size.add_argument("--assume-efficiency", type=float, default=sizing.DEFAULT_EFFICIENCY,
                      help="replica scaling efficiency when only one replica count was measured")  # fmt: skip
    size.add_argument(
        "--generator-cpu-us",
        type=float,
        help="client CPU per call, microseconds (bench/bench_cost.py): size the load generator too",
    )
    size.add_argument("--pod-cpu", type=float, default=1.0, help="CPU request of one generator pod, in cores")
    cost.add_arguments(rep)


def _check(args: argparse.Namespace) -> None:
    """Bad numbers stop with one line before anything is read."""
    cost.prices(args)
    bounds = (  # name, value, lowest allowed, highest allowed, whether the lowest itself is allowed
        ("--slo-p99-ms", args.slo_p99_ms, 0.0, float("inf"), False),
        ("--target-qps", args.target_qps, 0.0, float("inf"), False),
        ("--max-error-rate", args.max_error_rate, 0.0, 1.0, True),
        ("--headroom", args.headroom, 0.0, 0.95, True),
        ("--assume-efficiency", args.assume_efficiency, 0.0, 1.0, False),
        ("--generator-cpu-us", args.generator_cpu_us, 0.0, float("inf"), False),
        ("--pod-cpu", args.pod_cpu, 0.0, float("inf"), False),
    )
    for name, value, lo, hi, lo_ok in bounds:
        if value is not None and not (lo <= value <= hi and (lo_ok or value > lo)):
            raise LoadgenError(f"{name} {value:g}: out of range ({'' if lo_ok else 'above '}{lo:g} to {hi:g})")
    for name, count in (("--vectors", args.vectors), ("--dim", args.dim)):
        if count is not None and count < 1:
            raise LoadgenError(f"{name} {count}: must be at least 1")


def _index_params(text: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    if text is None:
        params = settings.get("index_params")
        return params if isinstance(params, dict) else {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        raise LoadgenError(f"--index-params {text!r}: expected a JSON object")
    return params


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The report document (what report.json holds), without charts."""
    from loadgen.report import analysis, diff, load, time_split

    cold = [doc for p in args.results if (doc := coldwarm.read(p)) is not None]  # `loadgen coldwarm`'s
    run_paths = [p for p in args.results if not coldwarm.alone(p)]
    if not run_paths:
        raise LoadgenError(
            "a coldwarm.json is shown beside a run's results: give those too (or write it into the run's folder "
            "with `loadgen coldwarm --out RUN_DIR`)"
        )
    runs = load.load(run_paths)
    base = load.load(args.baseline) if args.baseline else []
    if base:
        load.check_same_dataset([runs[0], base[0]])
    first = runs[0].settings
    result = analysis.analyse(runs, slo_p99_ms=args.slo_p99_ms, max_error_rate=args.max_error_rate)
    if not result["curves"]:
        raise LoadgenError(f"{runs[0].source}: the results hold no Milvus requests to report on")
    report: dict[str, Any] = {
        "format": FORMAT,
        "title": args.title,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "inputs": sorted({r.source for r in runs}),
        "runs": len(runs),
        # only what identifies the data and index: settings also hold the server URI, which stays out of reports
        "dataset": {
            **dict(zip(load.DATASET_KEYS, runs[0].dataset(), strict=True)),
            **{k: first.get(k) for k in ("index_type", "top_k", "consistency_level")},
        },
        "analysis": result,
        "time_split": time_split.analyse(runs),  # server time against client time
        # recall per step of each runbook among the inputs (``loadgen runbook``)
        "runbooks": [{"input": r.source, **r.results["runbook"]} for r in runs if r.results.get("runbook")],
        # ack -> searchable -> indexed of each run measured with --ingest-readiness
        "ingest": [{"input": r.source, **r.results["ingest"]} for r in runs if r.results.get("ingest")],
        # what the runs' figures leave out (a warm-up), one line per kind of window (loadgen.stats.resets)
        "warmup": resets.report_lines([r.run for r in runs]),
    }
    if cold:
        report["coldwarm"] = cold
    if args.target_qps is not None:
        vectors = args.vectors or int(first.get("rows") or 0)
        dim = args.dim or int(first.get("dim") or 0)
        if not vectors or not dim:
            raise LoadgenError("sizing needs --vectors and --dim (the results do not record them)")
        index = args.index or str(first.get("index_type") or "AUTOINDEX")
        same_index = args.index is None or args.index == first.get("index_type")
        params = _index_params(args.index_params, first if same_index else {})
        rows, run_dim = first.get("rows"), first.get("dim")  # the size the QPS was measured at
        shape = (int(rows), int(run_dim)) if isinstance(rows, int) and isinstance(run_dim, int) and rows else None
        report["sizing"] = sizing.plan(
            result, target_qps=args.target_qps, vectors=vectors, dim=dim, index=index,
            index_params=params, headroom=args.headroom, assumed_efficiency=args.assume_efficiency,
            measured_shape=shape,
        )  # fmt: skip
        if args.generator_cpu_us is not None:  # the generator's own processes and pods
            report["sizing"]["generator"] = sizing.generator(
                args.target_qps, args.generator_cpu_us, pod_cpu=args.pod_cpu, headroom=args.headroom
            )
    if (given := cost.prices(args)) is not None:
        report["cost"] = cost.section(given, result["curves"], report.get("sizing"))
    if base:
        report["diff"] = diff.diff(base, runs)
    return report


def run(args: argparse.Namespace) -> int:
    _check(args)
    out = (args.out or Path("results") / time.strftime("report-%Y%m%d-%H%M%S")).resolve()
    paths.writable_dir(out)  # before the runs are read
    report = build(args)
    from loadgen.report import html, markdown, plots

    a = report["analysis"]
    charts: dict[str, list[plots.Chart]] = {f"layer:{k}": v for k, v in plots.layer_charts(a).items()}
    for key, chart in (
        ("sync_async", plots.sync_async_chart(a["sync_vs_async"])),
        ("worker_scaling", plots.scaling_chart(a["worker_scaling"], "Locust worker processes")),
        ("replica_scaling", plots.scaling_chart(a["replica_scaling"], "Milvus replicas")),
        ("diff", plots.diff_chart(report["diff"]["rows"]) if "diff" in report else None),
        ("time_split", plots.time_split_chart(report["time_split"]["rows"])),
    ):
        if chart:
            charts[key] = [chart]
    paths.make_dir(out)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown.render(report))
    (out / "report.html").write_text(html.render(report, charts))
    for c in a["curves"]:
        slo = f", SLO-held {c['slo']['qps']:.1f} req/s" if c["slo"] else ""
        knee = f", knee at {c['knee']:g}" if c["knee"] is not None else ""
        print(f"{c['type']} {c['name']} ({c['processes']}w): peak {c['peak_qps']:.1f} req/s{knee}{slo}")
    for r in report.get("sizing", {}).get("rows", []):
        print(f"sizing {r['operation']}: {r['replicas']} replica(s) for {report['sizing']['target_qps']:g} QPS")
    priced = [(c, f"of {c['operation']} at its SLO-held rate") for c in report.get("cost", {}).get("measured", [])]
    priced += [(c, f"of {c['operation']} at the target") for c in report.get("cost", {}).get("sizing", [])]
    for i, (c, what) in enumerate(priced):
        print(cost.line(c, what, generator=i == 0))  # the generator's price once
    if g := report.get("sizing", {}).get("generator"):
        print(
            f"sizing load generator: {g['processes']} worker process(es) in {g['pods']} pod(s) of {g['pod_cpu']:g} CPU"
        )
    for rb in report["runbooks"]:
        all_r = rb["recall"]
        print(f"runbook {rb['input']}: recall mean {all_r['mean']:.4f}, p10 {all_r['p10']:.4f}, min {all_r['min']:.4f}")
    print(f"report: {out / 'report.html'}  summary: {out / 'report.md'}  data: {out / 'report.json'}")
    return 0
