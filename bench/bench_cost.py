"""What one search costs the generator: client CPU microseconds per call and latency, per client path, side by side.

    python bench/bench_cost.py [--host URI] [--inflight 1,10,100] [--seconds 3] [--rounds 3] [--paths a,b]

On one Milvus (embedded unless --host; 20k x 64 HNSW, k=10, consistency Bounded) and in one run, each path runs in a
child process of its own, at each number of calls in flight, for ``--seconds`` after a warm-up; rounds alternate
the order of the paths so drift on a shared machine lands on all of them. CPU is the child's process time (every
thread: grpc's, the asyncio loop's) over the window divided by the calls completed in it.

Paths:
- ``grpc``: the floor. ``SearchRequest``s built once (pymilvus's ``Prepare``), ``MilvusServiceStub.Search`` called
  directly on pymilvus's channel; N OS threads, no gevent.
- ``client``: a bare ``MilvusClient.search`` loop, N OS threads, no gevent.
- ``client-async``: a bare ``AsyncMilvusClient.search`` loop, N tasks on one asyncio loop (``asyncio.run``), no
  gevent: the async users' own bare loop (``QPS/bare`` reads the async paths against it, the others against
  ``client``).
- ``client-async-bridge``: the same bare loop on loadgen's asyncio loop, in a process under loadgen's gevent policy
  (patched modules, the loop in a thread of its own, an idle hub): what the async users' surroundings cost, without
  the users.
- ``user-sync`` / ``user-async``: N ``PymilvusUser`` / ``AsyncPymilvusUser`` in a Locust local runner, loadgen's
  listeners attached as in a real run (``events.init``), task ``search`` only.
- ``fast-sync`` / ``fast-async``: the same with ``FastPymilvusUser`` / ``AsyncFastPymilvusUser``.
- ``user-sync-greenlets`` / ``fast-sync-greenlets`` (and ``user-async-greenlets``): the same users on the
  ``greenlet`` driver (``--driver greenlet``): each call in the user's greenlet, a sync call's completion waited for
  on the hub's thread pool (grpc's gevent integration), an async one handed to the loop and back.
- ``loop-gevent``: a bare ``MilvusClient.search`` loop in N greenlets under loadgen's gevent policy (the users'
  runtime, without Locust): where the gevent integration's own cost shows.
- ``locust-milvus``: the peer: N of Locust's own ``locust.contrib.milvus.MilvusUser`` (``self.search`` in a task,
  ``MilvusClient`` under ``patch_all`` and grpc's gevent integration) in a Locust local runner, no loadgen.
- ``grpc-gevent``: the fast path's floor: the same greenlets sending its prebuilt requests on the raw channel, no
  Locust, no users: what the fast sync user costs beyond it is Locust's and loadgen's per-call work.

Prints a table and writes bench/out/cost.json. Ratios are per round (same round, same machine state), then medians.

``--before DIR``: a path named ``PATH@before`` runs ``PATH`` from another checkout (its own bench_cost.py and loadgen,
e.g. ``git archive main`` unpacked in DIR), in the same round as the others: a change measured side by side.

``--interleave``: every path's child of a round runs at once and they take turns in slices of ``SLICE_S`` (a shared
wall-clock schedule, ``Gate``): a call begins only in its own path's slice, so the paths measure the server of the
same moments (at one call in flight, separate 3 s windows moved a path's ratio to its bare loop by a third between
rounds, bench/COST.md section 8). ``--seconds`` is then each path's measured time, in slices.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COLLECTION = "lg_bench_cost"
OPTIONS = [
    "--collection", COLLECTION, "--dim", "64", "--rows", "20000", "--index-type", "HNSW", "--top-k", "10",
    "--consistency-level", "Bounded", "--weights", "search=1,fanout=0", "--keep-data",
]  # fmt: skip
PATHS = (
    "grpc", "client", "client-async", "client-async-bridge", "loop-gevent", "grpc-gevent",
    "user-sync", "user-sync-greenlets", "user-async", "user-async-greenlets", "fast-sync", "fast-sync-greenlets",
    "fast-async", "locust-milvus",
)  # fmt: skip
BEFORE = ""  # --before: the other checkout's directory
USERS = {
    "user-sync": ("loadgen.users.pymilvus", "PymilvusUser", "pymilvus"),
    "user-async": ("loadgen.users.pymilvus", "AsyncPymilvusUser", "pymilvus-async"),
    "fast-sync": ("loadgen.users.fastpath", "FastPymilvusUser", "pymilvus-fast"),
    "fast-async": ("loadgen.users.fastpath", "AsyncFastPymilvusUser", "pymilvus-fast-async"),
}


def _child_cmd(path: str) -> tuple[list[str], dict[str, str] | None]:
    """How a path's child starts: this file, or for ``PATH@before`` the other checkout's, with its loadgen."""
    if not path.endswith("@before"):
        return [sys.executable, __file__, "--child", path], None
    return ([sys.executable, str(Path(BEFORE) / "bench" / "bench_cost.py"), "--child", path.removesuffix("@before")],
            {**os.environ, "PYTHONPATH": BEFORE})  # fmt: skip


# ---- the child: one path, one concurrency, one window ----------------------------------------------------------
def _summary(lat_ms: list[float], calls: int, cpu_s: float, wall_s: float, hits: int) -> dict[str, Any]:
    lat = sorted(lat_ms)
    pick = lambda q: lat[min(int(q * len(lat)), len(lat) - 1)] if lat else 0.0  # noqa: E731
    return {
        "calls": calls, "wall_s": wall_s, "cpu_s": cpu_s, "qps": calls / wall_s,
        "cpu_us_per_call": cpu_s / max(calls, 1) * 1e6, "mean_ms": statistics.fmean(lat) if lat else 0.0,
        "p50_ms": pick(0.5), "p99_ms": pick(0.99), "hits_per_call": hits / max(calls, 1),
    }  # fmt: skip


SLICE_S = 0.2  # --interleave: one path's turn at up to 5 calls in flight (longer in proportion above)
MARGIN_S = 0.03  # ... of which the last part begins no call: a call rarely runs into the next path's turn


class Gate:
    """``--interleave``: this child's turns. Slice ``s`` (from the shared wall-clock ``epoch``) is child
    ``s % count``'s; cycle ``k`` holds one slice of each child. Measured: this child's slices of cycles ``first`` to
    ``first + cycles - 1``, the calls begun in them and the process's CPU sampled at their edges."""

    def __init__(self, spec: str) -> None:
        epoch, index, count, first, cycles, slice_s, margin_s = spec.split(",")
        self.epoch, self.index, self.count = float(epoch), int(index), int(count)
        self.first, self.cycles = int(first), int(cycles)
        self.slice, self.margin = float(slice_s), float(margin_s)
        self.offset = time.time() - time.perf_counter()

    def _where(self, t: float) -> tuple[int, float]:
        """Slice and seconds into it of the perf_counter time ``t``."""
        x = (t + self.offset - self.epoch) / self.slice
        s = math.floor(x)
        return s, (x - s) * self.slice

    def pause(self) -> float:
        """0 if a call may begin now, else the seconds until this child's next turn."""
        s, into = self._where(time.perf_counter())
        if s % self.count == self.index and into < self.slice - self.margin:
            return 0.0
        following = s + 1 + (self.index - s - 1) % self.count
        return max(self.epoch + following * self.slice - time.time(), 0.0)

    def counts(self, begun: float) -> bool:
        s, into = self._where(begun)
        return s % self.count == self.index and self.first <= s // self.count < self.first + self.cycles and (
            into < self.slice - self.margin)  # fmt: skip

    def window(self, sleep: Callable[[float], Any]) -> tuple[float, float]:
        """Sleeps through the measured cycles; this child's CPU seconds in its turns, and its turns' call time."""
        cpu = 0.0
        for k in range(self.first, self.first + self.cycles):
            start = self.epoch + (k * self.count + self.index) * self.slice
            sleep(max(start - time.time(), 0.0))
            cpu0 = time.process_time()
            sleep(max(start + self.slice - time.time(), 0.0))
            cpu += time.process_time() - cpu0
        return cpu, self.cycles * (self.slice - self.margin)


GATE: Gate | None = None  # set in a child of --interleave


def _go(sleep: Callable[[float], Any]) -> bool:
    """Before a call: False (after a sleep) if it is not this child's turn (--interleave)."""
    if GATE is not None and (pause := GATE.pause()):
        sleep(pause)
        return False
    return True


def _counted(state: dict[str, bool], begun: float) -> bool:
    return GATE.counts(begun) if GATE is not None else state["on"]


def _window(
    sleep: Callable[[float], Any], state: dict[str, bool], warmup: float, seconds: float
) -> tuple[float, float]:
    """The measured window, after the warm-up: ``state["on"]`` while it lasts; the process's CPU and wall seconds.
    Under ``--interleave``, the gate's turns instead."""
    if GATE is not None:
        return GATE.window(sleep)
    sleep(warmup)
    cpu0, t0 = time.process_time(), time.perf_counter()
    state["on"] = True
    sleep(seconds)
    state["on"] = False
    return time.process_time() - cpu0, time.perf_counter() - t0


def _settings(host: str) -> Any:
    from loadgen.config.settings import Settings, add_options

    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    return Settings.from_options(parser.parse_args(OPTIONS), host)


def _queries(s: Any) -> tuple[list[list[float]], dict[str, Any]]:
    """The bare loops' query vectors (``POOL``, one seed for every path) and search parameters."""
    import numpy as np

    from loadgen.clients.fastpath import POOL
    from loadgen.milvus.collection import search_params

    vectors = (np.random.default_rng(1).random((POOL, s.dim), dtype=np.float32) - 0.5).tolist()
    return vectors, {"metric_type": s.metric_type, "params": search_params(s)}


def _threads_loop(path: str, host: str, n: int, warmup: float, seconds: float) -> dict[str, Any]:
    """grpc / client: N OS threads, no gevent."""
    import threading

    from pymilvus import MilvusClient

    from loadgen.clients.fastpath import POOL, Requests

    s = _settings(host)
    vectors, param = _queries(s)
    state = {"on": False, "stop": False}
    lat: list[float] = []
    counts = [0, 0]  # calls, hits (in the window)
    lock = threading.Lock()
    clients = [MilvusClient(uri=host, timeout=s.timeout, alias=f"cost-{i}-{os.getpid()}") for i in range(n)]
    if path == "grpc":
        from pymilvus.grpc_gen import milvus_pb2

        def build(v: list[float]) -> Any:  # pymilvus's own request, parsed back: a SearchRequest object, built once
            return milvus_pb2.SearchRequest.FromString(Requests._search(s, param, [v]))

        built = [build(v) for v in vectors]

    def worker(i: int) -> None:
        c = clients[i]
        stub = c._get_connection()._stub
        md = (("dbname", ""),)
        k = i
        while not state["stop"]:
            if not _go(time.sleep):
                continue
            k = (k + 1) % POOL
            t0 = time.perf_counter()
            if path == "grpc":
                r = stub.Search(built[k], timeout=s.timeout, metadata=md)
                hits = len(r.results.ids.int_id.data)
            else:
                res = c.search(s.collection, data=[vectors[k]], limit=s.top_k, search_params=param,
                               consistency_level=s.consistency_level, timeout=s.timeout)  # fmt: skip
                hits = sum(len(h) for h in res)
            dt = (time.perf_counter() - t0) * 1000.0
            if _counted(state, t0):
                with lock:
                    lat.append(dt)
                    counts[0] += 1
                    counts[1] += hits

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    cpu, wall = _window(time.sleep, state, warmup, seconds)
    state["stop"] = True
    for t in threads:
        t.join(s.timeout + 1)
    for c in clients:
        c.close()
    return _summary(lat, counts[0], cpu, wall, counts[1])


def _gevent_loop(host: str, n: int, warmup: float, seconds: float, raw: bool = False) -> dict[str, Any]:
    """loop-gevent: N greenlets calling MilvusClient.search under loadgen's runtime (no Locust); ``raw``
    (grpc-gevent): the same greenlets sending the fast path's prebuilt requests on the client's raw channel."""
    import loadgen.runtime  # noqa: F401

    # isort: split
    import gevent
    from pymilvus import MilvusClient

    from loadgen.clients.fastpath import POOL, Requests, Store

    s = _settings(host)
    if raw:  # built once, before the greenlets start (as the fast users share one per process)
        first = MilvusClient(uri=host, timeout=s.timeout, alias=f"cost-build-{os.getpid()}")
        requests = Requests(s, first, first.describe_collection(s.collection))
        first.close()
    vectors, param = _queries(s)
    state = {"on": False, "stop": False}
    lat: list[float] = []
    counts = [0, 0]

    def worker(i: int) -> None:
        c = MilvusClient(uri=host, timeout=s.timeout, alias=f"cost-g{i}-{os.getpid()}")
        st = Store(s)
        if raw:
            st.bind(c._get_connection()._channel, c._db_name)
        k = i
        while not state["stop"]:
            if not _go(gevent.sleep):
                continue
            k = (k + 1) % POOL
            t0 = time.perf_counter()
            if raw:
                res = [st.search(requests.search[k], timeout=s.timeout, metadata=st.md).results.ids.int_id.data]
            else:
                res = c.search(s.collection, data=[vectors[k]], limit=s.top_k, search_params=param,
                               consistency_level=s.consistency_level, timeout=s.timeout)  # fmt: skip
            if _counted(state, t0):
                lat.append((time.perf_counter() - t0) * 1000.0)
                counts[0] += 1
                counts[1] += sum(len(h) for h in res)
        c.close()

    greenlets = [gevent.spawn(worker, i) for i in range(n)]
    cpu, wall = _window(gevent.sleep, state, warmup, seconds)
    state["stop"] = True
    gevent.joinall(greenlets, timeout=s.timeout + 1)
    return _summary(lat, counts[0], cpu, wall, counts[1])


def _locust_window(
    runner: Any, n: int, state: dict[str, bool], *, warmup: float, seconds: float, lat: list[float], counts: list[int]
) -> dict[str, Any]:
    """N users of a Locust local runner through the measured window; ``counts``: calls, hits, failures."""
    import gevent

    runner.start(n, spawn_rate=n, wait=False)
    cpu, wall = _window(gevent.sleep, state, warmup, seconds)
    runner.quit()
    out = _summary(lat, counts[0], cpu, wall, counts[1])
    out["failures"] = counts[2]
    return out


def _locust_users(path: str, host: str, n: int, warmup: float, seconds: float) -> dict[str, Any]:
    """N users of one class in a Locust local runner, with loadgen's listeners (events.init) as in a real run."""
    import loadgen.runtime

    # isort: split
    import importlib

    from locust import events
    from locust.env import Environment

    import loadgen.locust.hooks  # noqa: F401  - our listeners, as in a locustfile
    from loadgen.config.settings import add_options

    module, cls_name, request_type = USERS[path.removesuffix("-greenlets")]
    user_cls = getattr(importlib.import_module(module), cls_name)
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    ns = parser.parse_args(OPTIONS)
    ns.headless, ns.autostart, ns.users = True, False, n
    if path.endswith("-greenlets"):  # each call in the user's greenlet
        ns.driver = "greenlet"
    state = {"on": False}
    lat: list[float] = []
    counts = [0, 0, 0]  # calls, hits, failures
    if GATE is not None:  # a row comes to the hub after its call (in a batch): the call's own start decides
        from loadgen.users.pipeline import Pipeline

        gate, report = GATE, Pipeline._report

        def counted(pipeline: Any, call: Any, sample: Any, outcome: Any) -> None:
            if gate.counts(sample.start):
                if sample.error is not None:
                    counts[2] += 1
                else:
                    lat.append(sample.elapsed_ms)
                    counts[0] += 1
                    counts[1] += outcome.length
            report(pipeline, call, sample, outcome)

        Pipeline._report = counted  # type: ignore[method-assign]
        user_cls = type(cls_name, (user_cls,), {"wait_time": lambda _user: gate.pause()})
    env = Environment(user_classes=[user_cls], events=events, host=host, parsed_options=ns)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)

    def on_request(request_type: str, response_time: float, response_length: int, exception: Any, **_: Any) -> None:
        if state["on"] and request_type == want:
            if exception is not None:
                counts[2] += 1
                return
            lat.append(response_time)
            counts[0] += 1
            counts[1] += response_length

    want = request_type
    if GATE is None:
        events.request.add_listener(on_request)
    return _locust_window(runner, n, state, warmup=warmup, seconds=seconds, lat=lat, counts=counts)


def _locust_milvus(host: str, n: int, warmup: float, seconds: float) -> dict[str, Any]:
    """locust-milvus: N ``locust.contrib.milvus.MilvusUser`` searching in a Locust local runner, no loadgen. The
    bench's own clock around ``self.search`` (the user reports whole milliseconds); ``output_fields=[]`` as the other
    paths (its default asks for ``id`` again)."""
    from locust.contrib.milvus import MilvusUser  # its own gevent.monkey.patch_all() and grpc init_gevent() first

    # isort: split
    from locust import constant, events, task
    from locust.env import Environment

    from loadgen.clients.fastpath import POOL

    s = _settings(host)
    vectors, param = _queries(s)
    state = {"on": False}
    lat: list[float] = []
    counts = [0, 0, 0]  # calls, hits, failures
    turn = (lambda _user: GATE.pause()) if GATE is not None else constant(0)
    serial = iter(range(1 << 30))

    class Peer(MilvusUser):
        wait_time = turn

        def __init__(self, environment: Any) -> None:
            super().__init__(environment, uri=host, collection_name=s.collection, timeout=int(s.timeout))
            self.k = next(serial)

        @task
        def search_one(self) -> None:
            if GATE is not None and GATE.pause():
                return
            self.k = (self.k + 1) % POOL
            t0 = time.perf_counter()
            out = self.search([vectors[self.k]], "vector", s.top_k, search_params=param, output_fields=[])
            if _counted(state, t0):
                if not out.get("success"):
                    counts[2] += 1
                    return
                lat.append((time.perf_counter() - t0) * 1000.0)
                counts[0] += 1
                counts[1] += sum(len(h) for h in out["result"])

    env = Environment(user_classes=[Peer], events=events, host=host)
    runner = env.create_local_runner()
    return _locust_window(runner, n, state, warmup=warmup, seconds=seconds, lat=lat, counts=counts)


def _asyncio_loop(host: str, n: int, warmup: float, seconds: float, bridged: bool = False) -> dict[str, Any]:
    """client-async: N tasks on one asyncio loop, each a bare ``AsyncMilvusClient.search`` loop, no gevent.
    ``bridged`` (client-async-bridge): the same loop, but loadgen's (gevent's patches, the loop in a thread of its
    own, the hub idle): what the async users' surroundings cost without the users."""
    if bridged:
        import loadgen.runtime  # noqa: F401  - its policy before pymilvus, as in a run
    import asyncio

    from pymilvus import AsyncMilvusClient

    from loadgen.clients.fastpath import POOL

    s = _settings(host)
    vectors, param = _queries(s)
    state = {"on": False, "stop": False}
    lat: list[float] = []
    counts = [0, 0]

    async def worker(c: Any, i: int) -> None:
        k = i
        while not state["stop"]:
            if GATE is not None and (pause := GATE.pause()):
                await asyncio.sleep(pause)
                continue
            k = (k + 1) % POOL
            t0 = time.perf_counter()
            res = await c.search(s.collection, data=[vectors[k]], limit=s.top_k, search_params=param,
                                 consistency_level=s.consistency_level, timeout=s.timeout)  # fmt: skip
            dt = (time.perf_counter() - t0) * 1000.0
            if _counted(state, t0):
                lat.append(dt)
                counts[0] += 1
                counts[1] += sum(len(h) for h in res)

    async def run() -> dict[str, Any]:
        clients = [AsyncMilvusClient(uri=host, timeout=s.timeout, alias=f"cost-a{i}-{os.getpid()}") for i in range(n)]
        tasks = [asyncio.create_task(worker(c, i)) for i, c in enumerate(clients)]
        if GATE is not None:  # its sleeps in a thread of their own: the loop's tasks keep going
            cpu, wall = await asyncio.to_thread(GATE.window, real_sleep)
        else:
            await asyncio.sleep(warmup)
            cpu0, t0 = time.process_time(), time.perf_counter()
            state["on"] = True
            await asyncio.sleep(seconds)
            state["on"] = False
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        state["stop"] = True
        await asyncio.gather(*tasks)
        for c in clients:
            await c.close()
        return _summary(lat, counts[0], cpu, wall, counts[1])

    real_sleep = time.sleep
    if not bridged:
        return asyncio.run(run())
    import gevent.monkey

    from loadgen.runtime import bridge

    real_sleep = gevent.monkey.get_original("time", "sleep")  # the gate's thread has no hub
    return bridge.run(run(), 120 + seconds + warmup + n)


def child(path: str, host: str, n: int, seconds: float) -> dict[str, Any]:
    warmup = 1.0 + n / 50  # 100 users open 100 connections first
    if path in ("grpc", "client"):
        return _threads_loop(path, host, n, warmup, seconds)
    if path in ("client-async", "client-async-bridge"):
        return _asyncio_loop(host, n, warmup, seconds, bridged=path == "client-async-bridge")
    if path == "locust-milvus":
        return _locust_milvus(host, n, warmup, seconds)
    if path in ("loop-gevent", "grpc-gevent"):
        return _gevent_loop(host, n, warmup, seconds, raw=path == "grpc-gevent")
    return _locust_users(path, host, n, warmup, seconds)


# ---- the parent: one server, every path, alternating rounds -----------------------------------------------------
def run_child(path: str, host: str, n: int, seconds: float) -> dict[str, Any]:
    cmd, env = _child_cmd(path)
    cmd += ["--host", host, "--inflight", str(n), "--seconds", str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + n, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} x{n} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_together(paths: list[str], host: str, n: int, seconds: float) -> list[dict[str, Any]]:
    """--interleave: one child per path, all at once, taking turns (``Gate``); their results in ``paths``' order."""
    scale = max(1.0, n / 5)  # turns long enough that n calls in flight seldom spill into the next one's
    slice_s, margin_s = SLICE_S * scale, MARGIN_S * scale
    cycles = math.ceil(seconds / (slice_s - margin_s))
    first = math.ceil(1.0 / (slice_s - margin_s))  # each path's warm-up: a second of its own turns
    epoch = time.time() + 6.0 + n / 20  # the children's start (imports, n connections) comes first
    procs = []
    for i, p in enumerate(paths):
        gate = f"{epoch},{i},{len(paths)},{first},{cycles},{slice_s},{margin_s}"
        cmd, env = _child_cmd(p)
        cmd += ["--host", host, "--inflight", str(n), "--gate", gate]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    out = []
    for p, proc in zip(paths, procs, strict=True):
        stdout, stderr = proc.communicate(timeout=180 + n + 2 * (first + cycles) * len(paths) * slice_s)
        if proc.returncode != 0:
            raise RuntimeError(f"{p} x{n} failed:\n{stderr[-3000:]}")
        out.append(dict(json.loads(stdout.strip().splitlines()[-1])))
    return out


def measure(
    host: str, paths: list[str], inflight: list[int], seconds: float, rounds: int, *, interleave: bool = False
) -> dict[str, Any]:
    from loadgen.milvus import collection

    collection.prepare(_settings(host), progress=False)
    run_child("client", host, 1, 2)  # warm-up, discarded: the first searches after a fill are slow
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {p: {n: [] for n in inflight} for p in paths}
    for r in range(rounds):
        for n in inflight:
            order = paths[r % len(paths) :] + paths[: r % len(paths)]
            results = run_together(order, host, n, seconds) if interleave else None
            for i, p in enumerate(order):
                raw[p][n].append(results[i] if results is not None else run_child(p, host, n, seconds))
                print(f"round {r + 1} x{n} {p}: {raw[p][n][-1]['cpu_us_per_call']:.0f} us/call", file=sys.stderr)
    return {"runs": raw, "table": table(raw, paths, inflight)}


def table(raw: dict[str, Any], paths: list[str], inflight: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in inflight:
        for p in paths:
            runs = raw[p][n]
            med = {k: statistics.median(x[k] for x in runs) for k in ("cpu_us_per_call", "qps", "p50_ms", "mean_ms")}
            row: dict[str, Any] = {"path": p, "inflight": n, **med, "hits_per_call": runs[0]["hits_per_call"]}
            twin = {"fast-sync": "user-sync", "fast-async": "user-async", "fast-sync-greenlets": "user-sync-greenlets",
                    "user-sync-greenlets": "user-sync", "user-async-greenlets": "user-async"}.get(p, "")  # fmt: skip
            if p.endswith("@before"):  # a path from the other checkout: against the same path here
                twin = p.removesuffix("@before")
            # the same layer without us
            asynchronous = ("user-async", "fast-async", "client-async-bridge", "user-async-greenlets")
            bare = "client-async" if p.removesuffix("@before") in asynchronous else "client"
            bases = (("client", "client"), ("grpc", "grpc"), (twin, "user"), (bare, "bare"), ("locust-milvus", "peer"))
            for base, key in bases:
                if base in raw:  # the same round's base: ratios measured side by side
                    row[f"cpu_vs_{key}"] = statistics.median(
                        a["cpu_us_per_call"] / b["cpu_us_per_call"] for a, b in zip(runs, raw[base][n], strict=True)
                    )
                    row[f"qps_vs_{key}"] = statistics.median(
                        a["qps"] / b["qps"] for a, b in zip(runs, raw[base][n], strict=True)
                    )
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The table; a ratio whose base path was not in the run is ``-``."""
    cols = (("CPU/client", "cpu_vs_client"), ("CPU/grpc", "cpu_vs_grpc"), ("QPS/client", "qps_vs_client"),
            ("QPS/bare", "qps_vs_bare"), ("CPU/user", "cpu_vs_user"), ("QPS/user", "qps_vs_user"),
            ("QPS/peer", "qps_vs_peer"), ("CPU/peer", "cpu_vs_peer"))  # fmt: skip
    head = f"{'in flight':>9} {'path':<27} {'CPU us/call':>11} {'QPS':>7} {'p50 ms':>7} {'mean ms':>8} {'hits':>5}"
    lines = [head + "".join(f" {title:>10}" for title, _ in cols)]
    for r in rows:
        lines.append(
            f"{r['inflight']:>9} {r['path']:<27} {r['cpu_us_per_call']:>11.0f} {r['qps']:>7.0f} {r['p50_ms']:>7.2f}"
            f" {r['mean_ms']:>8.2f} {r['hits_per_call']:>5.1f}"
            + "".join(f" {r[key]:>10.2f}" if key in r else f" {'-':>10}" for _, key in cols)
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="")
    ap.add_argument("--inflight", default="1,10,100")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--out", default=str(HERE / "out" / "cost.json"))
    ap.add_argument("--interleave", action="store_true", help="the paths of a round at once, taking turns")
    ap.add_argument("--child", default="")
    ap.add_argument("--gate", default="", help=argparse.SUPPRESS)  # a child's turns under --interleave
    ap.add_argument("--before", default="", help="another checkout: paths named PATH@before run from it")
    a = ap.parse_args()
    global BEFORE  # noqa: PLW0603 - the parent's one setting, read where each child starts
    BEFORE = str(Path(a.before).resolve()) if a.before else ""
    if a.gate:
        global GATE  # noqa: PLW0603 - a child's one setting, read by every path's loop
        GATE = Gate(a.gate)
    if a.child:
        print(json.dumps(child(a.child, a.host, int(a.inflight), a.seconds)))
        return
    paths = [p for p in a.paths.split(",") if p]
    inflight = [int(x) for x in a.inflight.split(",")]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if a.host:
        result = measure(a.host, paths, inflight, a.seconds, a.rounds, interleave=a.interleave)
    else:
        from loadgen.milvus.server import EmbeddedMilvus

        with tempfile.TemporaryDirectory() as tmp, EmbeddedMilvus(Path(tmp), die_with_parent=True) as info:
            result = measure(info.uri, paths, inflight, a.seconds, a.rounds, interleave=a.interleave)
    result.update(started=started, seconds=a.seconds, rounds=a.rounds, options=OPTIONS, cpus=os.cpu_count(),
                  interleave=a.interleave)  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(render(result["table"]))


if __name__ == "__main__":
    main()
