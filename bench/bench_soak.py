"""Soak: a long headless `loadgen run` at many users; does the generator leak memory or file descriptors, and does
anything fail that should not? Not part of CI. Full runs, each 10 minutes:
  closed model: bench/bench_soak.py --users 200 --seconds 600
  open model:   bench/bench_soak.py --users 1000 --rate 200 --user-class AsyncPymilvusUser --seconds 600

The load generator's processes (Locust and any workers, not the loadgen CLI that only waits, nor Milvus) are sampled
every --sample seconds: resident memory, open file descriptors and CPU (share of one core), and each process's
event-loop lag (how late a 100 ms timer fires on the gevent hub and on the asyncio loop; bench/soak_locustfile.py).
The baseline is the first sample after --warmup seconds of load (connections opened, caches and histograms sized);
growth is the last sample against it.
Failures come from results.json by kind (see loadgen.stats.results.failure_kind): anything but a timeout under
overload is unexplained. Targets: memory growth < 5 %, no fd growth, 0 unexplained failures.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from loadgen.milvus.server import EmbeddedMilvus


def generator(cli: psutil.Process) -> list[psutil.Process]:
    """The Locust processes under the CLI. One that ends between listing and reading (a zombie at the end of the
    run, a worker that stops) is skipped: reading it raised and lost every sample of a 10-minute soak."""
    procs = []
    try:
        children = cli.children(recursive=True)
    except psutil.Error:
        return procs
    for p in children:
        try:
            if "locust" in " ".join(p.cmdline()):
                procs.append(p)
        except psutil.Error:
            pass
    return procs


def sample(procs: list[psutil.Process]) -> tuple[float, int, float]:
    rss, fds, cpu = 0, 0, 0.0
    for p in procs:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
            times = p.cpu_times()
            cpu += times.user + times.system
        except psutil.Error:  # ended meanwhile (a zombie raises ZombieProcess, a subclass of NoSuchProcess)
            pass
    return rss / 2**20, fds, cpu


def lags(lag_file: Path, since: float) -> dict:
    """The lag samplers' lines (every process) after the warm-up: mean of the window means, worst window max."""
    rows = []
    for path in lag_file.parent.glob(lag_file.name + ".*"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["t"] >= since]
    out: dict = {}
    for name in ("hub", "loop"):
        means = [r[f"{name}_lag_ms_mean"] for r in rows if f"{name}_lag_ms_mean" in r]
        maxes = [r[f"{name}_lag_ms_max"] for r in rows if f"{name}_lag_ms_max" in r]
        if means:
            out[f"{name}_lag_ms"] = {"mean": round(sum(means) / len(means), 2), "max": round(max(maxes), 1)}
    return out


def soak(uri: str, args: argparse.Namespace, out: Path) -> dict:
    model = ["--arrival-rate", str(args.rate)] if args.rate else []
    cmd = [
        sys.executable, "-m", "loadgen.cli", "run", "--host", uri, "-u", str(args.users),
        "-r", str(args.spawn_rate or (args.users if args.rate else 20)),
        "-t", f"{args.seconds}s", "--rows", str(args.rows), "--dim", "128", "--collection", "bench_soak",
        "--out", str(out), "-f", str(Path(__file__).resolve().parent / "soak_locustfile.py"), *model,
        *(["--processes", str(args.processes)] if args.processes else []), *args.user_class,
    ]  # fmt: skip
    lag_file = out.parent / "lag.jsonl"
    env = {**os.environ, "SOAK_LAG_FILE": str(lag_file), "SOAK_SAMPLE_S": str(args.sample)}
    log_path = out.parent / "soak.log"  # a file, not a pipe: nobody reads a pipe while the run goes on
    with log_path.open("w") as log_file:
        cli = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, text=True, env=env)
    ps = psutil.Process(cli.pid)
    samples: list[tuple[float, float, int, float]] = []
    start = wall_start = None
    while cli.poll() is None:
        procs = generator(ps)
        if procs and start is None and (out / "stats_stats_history.csv").exists():
            start, wall_start = time.monotonic(), time.time()  # the users are running (history is written then)
        if start is not None and procs:
            rss, fds, cpu = sample(procs)
            samples.append((time.monotonic() - start, rss, fds, cpu))
        time.sleep(args.sample)
    log = log_path.read_text()
    if args.log:  # the temporary directory goes with the run: keep the run's output where the user asked
        Path(args.log).write_text(log)
    if not (out / "results.json").exists():
        raise SystemExit(f"the run wrote no results.json (exit code {cli.returncode}); its output ends:\n{log[-3000:]}")
    results = json.loads((out / "results.json").read_text())
    steady = [s for s in samples if s[0] >= args.warmup and s[0] <= args.seconds]
    if len(steady) < 2:
        raise SystemExit(f"too few samples after the warm-up ({len(samples)} in all):\n{log[-3000:]}")
    (t0, rss0, fds0, cpu0), (t1, rss1, fds1, cpu1) = steady[0], steady[-1]
    cpu_pct = [100.0 * (b[3] - a[3]) / (b[0] - a[0]) for a, b in itertools.pairwise(steady) if b[0] > a[0]]
    kinds: dict[str, int] = {}
    for f in results["failures"]:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + f["occurrences"]
    unexplained = sum(n for kind, n in kinds.items() if kind != "timeout")
    growth = 100.0 * (rss1 - rss0) / rss0
    return {
        "users": args.users, "seconds": args.seconds, "processes": args.processes, "warmup_s": args.warmup,
        "model": "open" if args.rate else "closed", **({"arrival_rate": args.rate} if args.rate else {}),
        "classes": args.user_class or ["all in the locustfile"],
        "requests": results["totals"]["requests"], "failures": results["totals"]["failures"],
        "failures_by_kind": kinds, "unexplained_failures": unexplained,
        "rss_mb": {"baseline": round(rss0, 1), "end": round(rss1, 1), "peak": round(max(s[1] for s in steady), 1)},
        "rss_growth_pct": round(growth, 2),
        "fds": {"baseline": fds0, "end": fds1, "max": max(s[2] for s in steady)},
        "rps": round(results["totals"]["requests"] / args.seconds, 1),
        "cpu_pct_of_one_core": {
            "mean": round(100.0 * (cpu1 - cpu0) / max(t1 - t0, 1e-9), 1), "max": round(max(cpu_pct, default=0.0), 1),
        },
        **lags(lag_file, (wall_start or 0.0) + args.warmup),
        **({"open_loop": results["open_loop"]} if "open_loop" in results else {}),
        "targets_met": {
            "rss_growth_lt_5pct": growth < 5.0, "no_fd_growth": fds1 <= fds0, "no_unexplained": not unexplained,
        },
        "exit_code": cli.returncode, "samples": [(round(t, 1), round(r, 1), f) for t, r, f, _ in samples],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="Milvus URI (default: start an embedded Milvus)")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, help="default 20; open model: every user at once")
    parser.add_argument("--rate", type=float, default=0.0, help="open model: total requests/s (--arrival-rate)")
    parser.add_argument("--user-class", action="append", default=[], help="e.g. AsyncPymilvusUser (default: both)")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of load before the baseline sample")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=0)
    parser.add_argument("--log", help="also write the run's output (loadgen and Locust) to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loadgen-soak-") as tmp:
        if args.host:
            report = soak(args.host, args, Path(tmp) / "out")
        else:
            with EmbeddedMilvus(Path(tmp) / "milvus", die_with_parent=True) as info:
                report = soak(info.uri, args, Path(tmp) / "out")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
