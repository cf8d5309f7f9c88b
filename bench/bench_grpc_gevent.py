"""How many sync gRPC calls can be in flight at once under gevent? No Milvus: a local gRPC server whose one method
sleeps ``--delay`` seconds (so the answer is about concurrency, not CPU), N greenlets calling it back to back.

    python bench/bench_grpc_gevent.py [--delay 0.1 --seconds 3 --greenlets 1,8,16,32,64]

grpc's gevent integration (``init_gevent``, which sync users need) waits for sync calls' completions in the gevent
hub's native thread pool (``_latent_event`` -> ``threadpool.apply``, gevent's default pool: 10 threads), which raised
the question whether more than ~9 sync users per process can have a call in flight. Measured (2026-11-30): yes, 64
greenlets reached 589 calls/s of the ideal 640 with the default pool, so the pool is no cap. What a sync call does
pay is the hand-off itself: ~70 us of CPU per ``threadpool.apply`` (bench_cost.py's profiles). Prints calls/s per
greenlet count with the runtime's pool and with a pool set to 10 explicitly, and the ideal N / delay.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

METHOD = "/loadgen.bench.Sleep/Sleep"


def serve(port: int, delay: float) -> None:
    from concurrent import futures

    import grpc

    def sleep(request: bytes, context: object) -> bytes:
        time.sleep(delay)
        return request

    handler = grpc.method_handlers_generic_handler(
        "loadgen.bench.Sleep", {"Sleep": grpc.unary_unary_rpc_method_handler(sleep)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256), handlers=[handler])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination(timeout=120)


def client(port: int, counts: list[int], seconds: float, pool: int) -> list[dict[str, float]]:
    import loadgen.runtime  # noqa: F401  - the users' policy: patch_all(thread=False), init_gevent()

    # isort: split
    import gevent
    import grpc

    hub = gevent.get_hub()
    if pool:
        hub.threadpool.maxsize = pool
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD)
    call(b"x", timeout=10)
    out = []
    for n in counts:
        done = [0]
        end = time.perf_counter() + seconds

        def worker(end: float = end, done: list[int] = done) -> None:
            while time.perf_counter() < end:
                call(b"x", timeout=30)
                done[0] += 1

        start = time.perf_counter()
        gevent.joinall([gevent.spawn(worker) for _ in range(n)])
        out.append({"greenlets": n, "calls_per_s": done[0] / (time.perf_counter() - start),
                    "threadpool_maxsize": hub.threadpool.maxsize})  # fmt: skip
    channel.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--greenlets", default="1,8,16,32,64")
    ap.add_argument("--role", default="")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--pool", type=int, default=0, help="client: set the hub's threadpool maxsize (0: leave it)")
    a = ap.parse_args()
    counts = [int(x) for x in a.greenlets.split(",")]
    if a.role == "server":
        serve(a.port, a.delay)
        return
    if a.role == "client":
        print(json.dumps(client(a.port, counts, a.seconds, a.pool)))
        return
    from loadgen.milvus.server import free_ports

    (port,) = free_ports(1)
    server = subprocess.Popen([sys.executable, __file__, "--role", "server", "--port", str(port), "--delay",
                               str(a.delay)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        result = {}
        for label, pool in (("loadgen runtime", 0), ("gevent default (10)", 10)):
            cmd = [sys.executable, __file__, "--role", "client", "--port", str(port), "--greenlets", a.greenlets,
                   "--seconds", str(a.seconds), "--pool", str(pool)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 10 * a.seconds, check=True)
            result[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)
    print(f"{'greenlets':>9} {'ideal/s':>8} " + " ".join(f"{k:>20}" for k in result))
    for i, n in enumerate(counts):
        cells = " ".join(f"{rows[i]['calls_per_s']:>20.1f}" for rows in result.values())
        print(f"{n:>9} {n / a.delay:>8.0f} {cells}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
