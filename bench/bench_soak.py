"""Soak: a long headless `loadgen run` at many users; does the generator leak memory or file descriptors, and does
anything fail that should not? Not part of CI (issue 8's full run: --users 200 --seconds 600).

The load generator's processes (Locust and any workers, not the loadgen CLI that only waits, nor Milvus) are sampled
every --sample seconds: resident memory and open file descriptors. The baseline is the first sample after --warmup
seconds of load (connections opened, caches and histograms sized); growth is the last sample against it.
Failures come from results.json by kind (see loadgen.stats.results.failure_kind): anything but a timeout under
overload is unexplained. Targets: memory growth < 5 %, no fd growth, 0 unexplained failures.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from loadgen.milvus.server import EmbeddedMilvus


def generator(cli: psutil.Process) -> list[psutil.Process]:
    return [p for p in cli.children(recursive=True) if "locust" in " ".join(p.cmdline())]


def sample(procs: list[psutil.Process]) -> tuple[float, int]:
    rss, fds = 0, 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
        except psutil.NoSuchProcess:
            pass
    return rss / 2**20, fds


def soak(uri: str, args: argparse.Namespace, out: Path) -> dict:
    cmd = [
        sys.executable, "-m", "loadgen.cli", "run", "--host", uri, "-u", str(args.users), "-r", str(args.spawn_rate),
        "-t", f"{args.seconds}s", "--rows", str(args.rows), "--dim", "128", "--collection", "bench_soak",
        "--out", str(out), *(["--processes", str(args.processes)] if args.processes else []),
    ]  # fmt: skip
    log_path = out.parent / "soak.log"  # a file, not a pipe: nobody reads a pipe while the run goes on
    with log_path.open("w") as log_file:
        cli = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(cli.pid)
    samples: list[tuple[float, float, int]] = []
    start = None
    while cli.poll() is None:
        procs = generator(ps)
        if procs and start is None and (out / "stats_stats_history.csv").exists():
            start = time.monotonic()  # the users are running (Locust writes history only then)
        if start is not None and procs:
            rss, fds = sample(procs)
            samples.append((time.monotonic() - start, rss, fds))
        time.sleep(args.sample)
    log = log_path.read_text()
    results = json.loads((out / "results.json").read_text())
    steady = [s for s in samples if s[0] >= args.warmup and s[0] <= args.seconds]
    if len(steady) < 2:
        raise SystemExit(f"too few samples after the warm-up ({len(samples)} in all):\n{log[-3000:]}")
    (_, rss0, fds0), (_, rss1, fds1) = steady[0], steady[-1]
    kinds: dict[str, int] = {}
    for f in results["failures"]:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + f["occurrences"]
    unexplained = sum(n for kind, n in kinds.items() if kind != "timeout")
    growth = 100.0 * (rss1 - rss0) / rss0
    return {
        "users": args.users, "seconds": args.seconds, "processes": args.processes, "warmup_s": args.warmup,
        "requests": results["totals"]["requests"], "failures": results["totals"]["failures"],
        "failures_by_kind": kinds, "unexplained_failures": unexplained,
        "rss_mb": {"baseline": round(rss0, 1), "end": round(rss1, 1), "peak": round(max(s[1] for s in steady), 1)},
        "rss_growth_pct": round(growth, 2),
        "fds": {"baseline": fds0, "end": fds1, "max": max(s[2] for s in steady)},
        "rps": round(results["totals"]["requests"] / args.seconds, 1),
        "targets_met": {
            "rss_growth_lt_5pct": growth < 5.0, "no_fd_growth": fds1 <= fds0, "no_unexplained": not unexplained,
        },
        "exit_code": cli.returncode, "samples": [(round(t, 1), round(r, 1), f) for t, r, f in samples],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="Milvus URI (default: start an embedded Milvus)")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of load before the baseline sample")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=0)
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
