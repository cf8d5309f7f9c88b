"""Throughput of one vs two Locust worker processes when the client side is the bottleneck.

The same master/worker commands the Kubernetes pods run (``python -m locust -f k8s/locust/locustfiles/locustfile.py
--master|--worker``), as local processes against an embedded Milvus: a headless master that waits for N workers,
then N workers sharing the same number of users. Search-only, Bounded consistency and a small collection keep each
request cheap for Milvus, so one worker process (one core, one GIL) saturates first; its CPU use is printed to show
that. The figure: searches/s with 2 workers divided by searches/s with 1.

    .venv/bin/python bench/bench_k8s_workers.py [--users 40] [--seconds 10]     (about 45 s; not run in CI)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgen.milvus.server import EmbeddedMilvus, free_ports

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "k8s" / "locust" / "locustfiles" / "locustfile.py"
OPTIONS = ["--collection", "bench_k8s", "--rows", "5000", "--dim", "32", "--weights", "search=1"]


def one_run(uri: str, workers: int, users: int, seconds: int, out: Path) -> dict[str, float]:
    (port,) = free_ports(1)
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master = subprocess.Popen(
        [*locust, "--master", "--master-bind-port", str(port), "--headless", "--expect-workers", str(workers),
         "--expect-workers-max-wait", "60", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
         "--host", uri, "--only-summary", "--json-file", str(out / f"w{workers}"), "--enable-rebalancing", *OPTIONS],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen(worker, env=env, start_new_session=True, **quiet) for _ in range(workers)]
    start = time.monotonic()
    try:
        master.wait(timeout=seconds + 90)
        cpu = []
        for p in procs:  # wait4: the worker's own CPU seconds, to show whether it was saturated
            _pid, _status, usage = os.wait4(p.pid, 0)
            p.returncode = 0
            cpu.append(usage.ru_utime + usage.ru_stime)
    finally:
        for p in [master, *procs]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    entries = json.loads((out / f"w{workers}.json").read_text())
    searches = sum(e["num_requests"] for e in entries if e["name"] == "search")
    fails = sum(e["num_failures"] for e in entries)
    return {
        "workers": workers,
        "users": users,
        "seconds": seconds,
        "searches": searches,
        "failures": fails,
        "searches_per_s": searches / seconds,
        "worker_cpu_s": [round(c, 2) for c in cpu],
        "wall_s": round(time.monotonic() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp, EmbeddedMilvus(Path(tmp) / "milvus") as info:
        runs = [one_run(info.uri, n, args.users, args.seconds, Path(tmp)) for n in (1, 2)]
    one, two = runs
    result = {
        "runs": runs,
        "ratio_2_vs_1": round(two["searches_per_s"] / one["searches_per_s"], 2) if one["searches_per_s"] else None,
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
