"""Our PymilvusUser against a raw pymilvus loop, same concurrency, same server, same search.

Both run in this process under the same gevent policy (cooperative grpc): the raw loop is N greenlets, each with its own
MilvusClient, calling search back to back; ours is N PymilvusUser in a Locust LocalRunner with only the search task.
Target: ours reaches at least 0.9x the raw loop's throughput. Rounds alternate to share any drift.
"""

import loadgen.runtime  # first

# isort: split
import argparse
import json
import statistics
import sys
import time
import uuid

import gevent
import numpy as np
from locust import events
from locust.env import Environment
from pymilvus import MilvusClient

import loadgen.locust.hooks  # noqa: F401  - our listeners, as in a locustfile
from loadgen.config.settings import Settings, add_options
from loadgen.milvus import collection
from loadgen.users.pymilvus import PymilvusUser


def options(uri: str, users: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    ns = parser.parse_args(
        ["--collection", "bench_sync", "--dim", "128", "--rows", "10000", "--weights", "search=1", "--keep-data"]
    )
    ns.headless, ns.autostart, ns.users = True, False, users
    return ns


def raw_loop(settings: Settings, users: int, seconds: float) -> float:
    params = {"metric_type": settings.metric_type, "params": collection.search_params(settings)}
    rng = np.random.default_rng(1)
    done = [0]

    def worker() -> None:
        c = MilvusClient(uri=settings.uri, timeout=settings.timeout, alias=f"raw-{uuid.uuid4().hex}")
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            v = (rng.random((1, settings.dim), dtype=np.float32) - 0.5).tolist()
            c.search(settings.collection, data=v, limit=settings.top_k, search_params=params,
                     consistency_level=settings.consistency_level, timeout=settings.timeout)  # fmt: skip
            done[0] += 1
        c.close()

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(users)])
    return done[0] / (time.perf_counter() - start)


def our_users(uri: str, users: int, seconds: float) -> float:
    env = Environment(user_classes=[PymilvusUser], events=events, host=uri, parsed_options=options(uri, users))
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users, wait=False)
    gevent.sleep(0.5)  # let every user connect before we count
    env.stats.reset_all()
    start = time.perf_counter()
    gevent.sleep(seconds)
    count = env.stats.get("search", "pymilvus").num_requests
    elapsed = time.perf_counter() - start
    runner.stop()
    runner.quit()
    return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    settings = Settings.from_options(options(args.host, args.users), args.host)
    collection.prepare(settings, progress=False)
    raw_loop(settings, args.users, min(args.seconds, 5))  # warm-up, discarded: first searches after a fill are slow
    raw, ours = [], []
    for _ in range(args.rounds):
        raw.append(raw_loop(settings, args.users, args.seconds))
        ours.append(our_users(args.host, args.users, args.seconds))
    result = {
        "users": args.users,
        "seconds_per_round": args.seconds,
        "raw_qps": [round(x, 1) for x in raw],
        "loadgen_qps": [round(x, 1) for x in ours],
        "ratio_of_medians": statistics.median(ours) / statistics.median(raw),
    }
    collection.drop_if_owned(settings)
    print(json.dumps(result, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
