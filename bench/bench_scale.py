"""Is the latency we report independent of how many users share the process? One fixed open-model rate, 10 / 100 /
1,000 async users in one process, and where the time goes.

    python bench/bench_scale.py --fake-ms 30 [--rate 150 --seconds 12 --users 10,100,1000]   # no server at all
    python bench/bench_scale.py --host URI --metrics URL [--rate 150 ...]                      # real Milvus
    ... --rounds 3   # the levels in alternating order, 3 times; a row per level: the median of its rounds

``--fake-ms``: each call is ``asyncio.sleep(fake_ms)`` on the loop, behind the real async user's machinery
(its schedule and sends on the loop, the ``loop`` driver; ``ameasure``, ``report``, Locust's stats; with
``--sync``, send greenlets): whatever the reported time has on top of ``fake_ms`` is the generator's own. With
``--host`` the calls are real searches (AsyncPymilvusUser; ``--fast``: AsyncFastPymilvusUser, prebuilt requests)
and the server's own mean comes from ``milvus_proxy_sq_latency`` on its /metrics.

The network round trip (``rtt_ms``): while a level's window runs, a process of its own (``--probe``) sends a
``GetVersion`` (no work on the server) on a raw gRPC channel every 50 ms; ``x srv+rtt`` is the reported mean over the
server's mean plus that round trip. ``--floor`` adds a bare asyncio row before each level's (``AsyncMilvusClient``s,
or with ``--fast`` the fast path's prebuilt requests on raw ``grpc.aio`` channels): the same ratio for a client
without loadgen.

Per level (a child process each): reported mean / p50 / p99 (from the intended send time, as the open model
reports), its parts (``queued_ms``: intended -> the call started on the loop; ``service_ms``: the call on the loop),
late and dropped sends, generator CPU (process time, all threads) over the window. Prints a table; writes
bench/out/scale.json. The window opens once every user has connected: the connection storm is not in it.

``--before DIR``: each level also runs from another checkout (its bench_scale.py and loadgen, e.g. ``git archive
main`` unpacked in DIR), right after this one's in the same round: rows marked ``before``, a change side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)] if xs else 0.0


def server_search_latency(metrics_url: str) -> tuple[float, float]:
    """(sum ms, count) of milvus_proxy_sq_latency for searches, all proxies."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if 'query_type="search"' not in line:
            continue
        if line.startswith("milvus_proxy_sq_latency_sum{"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("milvus_proxy_sq_latency_count{"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


PROBE_EVERY_S = 0.05


def rtt_probe(host: str, seconds: float) -> dict[str, Any]:
    """The round trip of a call that does no work on the server: ``GetVersion`` on a raw gRPC channel (plaintext),
    every 50 ms for ``seconds`` from the wall-clock time its parent writes on stdin (the window's start), one call at
    a time, in this process of its own."""
    import grpc
    from pymilvus.grpc_gen import milvus_pb2

    channel = grpc.insecure_channel(host.rsplit("://", 1)[-1])
    call = channel.unary_unary("/milvus.proto.milvus.MilvusService/GetVersion", request_serializer=None,
                               response_deserializer=milvus_pb2.GetVersionResponse.FromString)  # fmt: skip
    request = milvus_pb2.GetVersionRequest().SerializeToString()
    call(request, timeout=5.0)  # connected before the window
    time.sleep(max(float(sys.stdin.readline()) - time.time(), 0.0))
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        call(request, timeout=5.0)
        lat.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(PROBE_EVERY_S)
    channel.close()
    return {"rtt_ms": statistics.fmean(lat), "rtt_p50_ms": _pct(lat, 0.5), "rtt_calls": len(lat)}


def start_probe(host: str, seconds: float) -> subprocess.Popen[str] | None:
    """The probe's process, started before this one opens any gRPC channel (a fork among live grpc threads can die
    before its exec: the probe of a level with 100 clients printed nothing); ``probe_go`` starts its window."""
    if not host:
        return None
    cmd = [sys.executable, __file__, "--probe", "--host", host, "--seconds", str(seconds)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def probe_go(probe: subprocess.Popen[str] | None, at: float) -> None:
    if probe is not None and probe.stdin is not None:
        probe.stdin.write(f"{at!r}\n")
        probe.stdin.flush()


def probe_result(probe: subprocess.Popen[str] | None, server_mean: float | None, mean: float) -> dict[str, Any]:
    """The probe's round trip, and the reported mean over the server's mean plus it."""
    if probe is None:
        return {"rtt_ms": None, "vs_server_rtt": None}
    out, err = probe.communicate(timeout=60)
    if probe.returncode != 0 or not out.strip():
        raise SystemExit(f"the round-trip probe failed (exit {probe.returncode}):\n{err[-2000:]}")
    rtt = json.loads(out.strip().splitlines()[-1])
    ratio = mean / (server_mean + rtt["rtt_ms"]) if server_mean is not None else None
    return {**rtt, "vs_server_rtt": ratio}


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key not in ("round", "users"):
            values = [x[key] for x in rows if x.get(key) is not None]
            out[key] = statistics.median(values) if values else None
    out["round"] = f"median of {len(rows)}"
    out["rounds"] = rows
    return out


def _options(a: argparse.Namespace) -> argparse.Namespace:
    from loadgen.config.settings import add_options

    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    opts = ["--weights", "search=1,fanout=0", "--arrival-rate", str(a.rate), "--max-in-flight", "1000"]
    opts += ["--collection", "lg_bench_scale", "--dim", "64", "--rows", "5000", "--keep-data"]
    return parser.parse_args(opts)


async def _floor_calls(a: argparse.Namespace) -> tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[Any]]]:
    """On the floor's loop: (the k-th call, close). Without ``--host`` the fake sleep; with it a search on one of
    ``--users`` ``AsyncMilvusClient``s in turn, or with ``--fast`` the fast path's prebuilt requests on as many raw
    ``grpc.aio`` channels (no pymilvus per call)."""
    import asyncio

    if not a.host:
        return (lambda _k: asyncio.sleep(a.fake_ms / 1000.0)), (lambda: asyncio.sleep(0))
    import numpy as np

    from loadgen.config.settings import Settings
    from loadgen.milvus import collection

    s = Settings.from_options(_options(a), a.host)
    collection.prepare(s, progress=False)  # the collection the users' runs search (kept between levels)
    params = {"metric_type": s.metric_type, "params": collection.search_params(s)}
    queries = (np.random.default_rng(1).random((1024, s.dim), dtype=np.float32) - 0.5).tolist()
    if a.fast:
        import grpc
        from pymilvus.client.utils import check_status
        from pymilvus.grpc_gen import milvus_pb2

        from loadgen.clients.fastpath import Requests

        prebuilt = [Requests._search(s, params, [q]) for q in queries]
        channels = [grpc.aio.insecure_channel(a.host.rsplit("://", 1)[-1]) for _ in range(a.users)]
        stubs = [ch.unary_unary("/milvus.proto.milvus.MilvusService/Search", request_serializer=None,
                                response_deserializer=milvus_pb2.SearchResults.FromString,
                                _registered_method=True) for ch in channels]  # fmt: skip
        md = (("dbname", ""),)

        async def raw(k: int) -> None:
            check_status((await stubs[k % len(stubs)](prebuilt[k % 1024], timeout=s.timeout, metadata=md)).status)

        for i in range(len(stubs)):
            await raw(i)  # connected before the window
        return raw, lambda: asyncio.gather(*(ch.close() for ch in channels))
    from pymilvus import AsyncMilvusClient

    clients = [AsyncMilvusClient(uri=a.host, alias=f"floor-{i}") for i in range(a.users)]
    for c in clients:
        await c.has_collection(s.collection)  # connected before the window

    def search(k: int) -> Awaitable[Any]:
        return clients[k % len(clients)].search(s.collection, data=[queries[k % 1024]], limit=s.top_k,
                                                search_params=params, consistency_level=s.consistency_level,
                                                timeout=s.timeout)  # fmt: skip

    return search, lambda: asyncio.gather(*(c.close() for c in clients))


def loop_floor(a: argparse.Namespace) -> dict[str, Any]:
    """The floor for the open model: the schedule on a plain asyncio loop (one task per send; no Locust, no greenlet,
    no hand-off), each call one of ``_floor_calls``: what an app with that many clients sees at that rate, next to
    which our users' figures are read. ``queued_ms`` here is asyncio's own lateness (intended -> the call began)."""
    probe = start_probe(a.host, a.seconds)  # first: before any channel
    import asyncio

    from loadgen.workload.arrival_rate import LATE_MS, Pacer

    async def run() -> dict[str, Any]:
        lat: list[float] = []
        queued: list[float] = []
        late = [0]
        call_k, close = await _floor_calls(a)

        async def call(k: int, intended: float) -> None:
            began = time.perf_counter()
            await call_k(k)
            if intended >= window:
                lat.append((time.perf_counter() - intended) * 1000.0)
                queued.append((began - intended) * 1000.0)

        pacer = Pacer(a.rate, start=time.perf_counter() + 1.0)
        window = pacer.start + 2.0  # the first 2 s of sends are warm-up
        end = window + a.seconds
        probe_go(probe, time.time() + (window - time.perf_counter()))
        server0 = server_search_latency(a.metrics) if a.metrics else (0.0, 0.0)
        cpu0 = time.process_time()
        tasks = set()
        k = 0
        while time.perf_counter() < end:
            for intended in pacer.due(time.perf_counter()):
                late[0] += (time.perf_counter() - intended) * 1000.0 > LATE_MS and intended >= window
                task = asyncio.get_running_loop().create_task(call(k, intended))
                k += 1
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(pacer.next_due - time.perf_counter(), 0.0))
        cpu = time.process_time() - cpu0
        await asyncio.gather(*tasks)
        server1 = server_search_latency(a.metrics) if a.metrics else (0.0, 0.0)
        await close()
        n_server = server1[1] - server0[1]
        server_mean = (server1[0] - server0[0]) / n_server if n_server else None
        probed = probe_result(probe, server_mean, statistics.fmean(lat))
        return {"users": f"{a.users} bare" if a.host else "loop", "rate": a.rate, "calls": len(lat),
                "achieved_rate": len(lat) / a.seconds, "mean_ms": statistics.fmean(lat), "p50_ms": _pct(lat, 0.5),
                "p99_ms": _pct(lat, 0.99), "queued_mean_ms": statistics.fmean(queued),
                "service_mean_ms": statistics.fmean(lat) - statistics.fmean(queued), "late": late[0],
                "sent": len(lat), "dropped": 0, "send_lag_mean_ms": 0.0, "server_mean_ms": server_mean, **probed,
                "cpu_share_of_core": cpu / (a.seconds + 2.0), "cpu_us_per_call": cpu / max(k, 1) * 1e6}  # fmt: skip

    return asyncio.run(run())


def _wait_started(runner: Any, users: int) -> None:
    """Until every user has connected: 1,000 sync clients take ~15 s of CPU to connect, and a window that starts
    before they all have measures the ramp-up, not the rate."""
    import gevent

    deadline = time.perf_counter() + 120.0
    while time.perf_counter() < deadline:
        started = [g.args[0] for g in runner.user_greenlets]
        if len(started) == users and all(u.store is not None for u in started):
            return
        gevent.sleep(0.2)
    raise SystemExit(f"{users} users did not all start within 120 s")


def child(a: argparse.Namespace) -> dict[str, Any]:
    probe = start_probe(a.host, a.seconds)  # first: before any channel
    import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy, before the rest

    # isort: split
    import gevent
    from locust import events
    from locust.env import Environment

    from loadgen.clients import fake
    from loadgen.locust import hooks
    from loadgen.users.fake import AsyncFakeUser, FakeUser
    from loadgen.users.fastpath import AsyncFastPymilvusUser, FastPymilvusUser
    from loadgen.users.pymilvus import AsyncPymilvusUser, PymilvusUser

    fake.DELAY_S = a.fake_ms / 1000.0  # each fake call: an asyncio.sleep on the loop, nothing else
    if a.switch_interval:  # the interpreter lock's hand-over interval (5 ms by default)
        sys.setswitchinterval(a.switch_interval)

    host = a.host or "http://127.0.0.1:9"  # fake: nothing connects
    ns = _options(a)
    ns.headless, ns.autostart, ns.users, ns.total_users = True, False, a.users, a.users
    user_cls = (PymilvusUser if a.sync else AsyncPymilvusUser) if a.host else (FakeUser if a.sync else AsyncFakeUser)
    if a.fast and a.host:
        user_cls = FastPymilvusUser if a.sync else AsyncFastPymilvusUser
    kind = user_cls.layer + ("" if a.sync else "-async")
    env = Environment(user_classes=[user_cls], events=events, host=host, parsed_options=ns)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)  # listeners (and the collection), as a run does
    state = {"on": False}
    rows: list[tuple[float, float, float]] = []
    fails = [0]

    def on_request(response_time: float, exception: Any, context: dict[str, Any], **_: Any) -> None:
        if not state["on"]:
            return
        if exception is not None:
            fails[0] += 1
            return
        rows.append((response_time, context.get("queued_ms", 0.0), context.get("service_ms", 0.0)))

    events.request.add_listener(on_request)
    runner.start(a.users, spawn_rate=a.users, wait=False)
    _wait_started(runner, a.users)
    probe_go(probe, time.time() + 2.0)
    gevent.sleep(2.0)  # and every schedule running
    counts0 = hooks.state.arrivals.of(kind).to_dict() if hooks.state.arrivals else {}
    server0 = server_search_latency(a.metrics) if a.metrics else (0.0, 0.0)
    cpu0, t0 = time.process_time(), time.perf_counter()
    state["on"] = True
    gevent.sleep(a.seconds)
    state["on"] = False
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    server1 = server_search_latency(a.metrics) if a.metrics else (0.0, 0.0)
    counts1 = hooks.state.arrivals.of(kind).to_dict() if hooks.state.arrivals else {}
    runner.quit()
    lat = [r[0] for r in rows]
    n_server = server1[1] - server0[1]
    server_mean = (server1[0] - server0[0]) / n_server if n_server else None
    probed = probe_result(probe, server_mean, statistics.fmean(lat) if lat else 0.0)
    return {
        "users": a.users, "rate": a.rate, "calls": len(rows), "failures": fails[0], "achieved_rate": len(rows) / wall,
        "mean_ms": statistics.fmean(lat) if lat else 0.0, "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99),
        "queued_mean_ms": statistics.fmean(r[1] for r in rows) if rows else 0.0,
        "queued_p99_ms": _pct([r[1] for r in rows], 0.99),
        "service_mean_ms": statistics.fmean(r[2] for r in rows) if rows else 0.0,
        **{k: counts1.get(k, 0) - counts0.get(k, 0) for k in ("late", "sent", "dropped")},
        "send_lag_mean_ms": (counts1.get("lag_sum_ms", 0) - counts0.get("lag_sum_ms", 0))
        / max(counts1.get("sent", 0) - counts0.get("sent", 0), 1),
        "server_mean_ms": server_mean, **probed,
        "cpu_s": cpu, "cpu_share_of_core": cpu / wall, "cpu_us_per_call": cpu / max(len(rows), 1) * 1e6,
    }  # fmt: skip


def _print(rows: list[dict[str, Any]], fake_ms: float) -> None:
    print(f"{'code':>6} {'users':>6} {'rate':>6} {'mean':>7} {'p50':>7} {'p99':>7} {'queued':>7} {'service':>7}"
          f" {'server':>7} {'rtt':>6} {'x srv+rtt':>9} {'lag':>6} {'late':>5} {'sent':>5} {'CPU %':>6}"
          f" {'CPU us/call':>11}")  # fmt: skip
    for r in rows:
        server = f"{r['server_mean_ms']:.2f}" if r["server_mean_ms"] is not None else f"({fake_ms:g})"
        rtt = f"{r['rtt_ms']:.2f}" if r.get("rtt_ms") is not None else "-"
        ratio = f"{r['vs_server_rtt']:.2f}" if r.get("vs_server_rtt") is not None else "-"
        code = "floor" if r.get("floor") else r.get("code", "")
        print(f"{code:>6} {r['users']:>6} {r['achieved_rate']:>6.1f} {r['mean_ms']:>7.2f} {r['p50_ms']:>7.2f}"
              f" {r['p99_ms']:>7.2f} {r['queued_mean_ms']:>7.2f} {r['service_mean_ms']:>7.2f} {server:>7} {rtt:>6}"
              f" {ratio:>9} {r['send_lag_mean_ms']:>6.2f} {r['late']:>5} {r['sent']:>5}"
              f" {100 * r['cpu_share_of_core']:>6.1f} {r['cpu_us_per_call']:>11.0f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="")
    ap.add_argument("--metrics", default="", help="the server's Prometheus URL (server mean latency)")
    ap.add_argument("--fake-ms", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=150.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--users", default="10,100,1000")
    ap.add_argument("--rounds", type=int, default=1, help="levels in alternating order, then medians per level")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=str(HERE / "out" / "scale.json"))
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--probe", action="store_true", help="(internal) the round-trip probe of one level")
    ap.add_argument("--loop-floor", action="store_true", help="the schedule on the asyncio loop itself (no Locust)")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="with --host: a bare asyncio row before each level's (N AsyncMilvusClients; --fast: raw channels)",
    )
    ap.add_argument("--sync", action="store_true", help="sync users (no asyncio hand-off) instead of async ones")
    ap.add_argument("--fast", action="store_true", help="with --host: the fast-path users (prebuilt requests)")
    ap.add_argument("--switch-interval", type=float, default=0.0, help="sys.setswitchinterval in the generator")
    ap.add_argument("--before", default="", help="another checkout: each level from it too, side by side")
    a = ap.parse_args()
    if a.probe:
        print(json.dumps(rtt_probe(a.host, a.seconds)))
        return
    if a.loop_floor:
        a.users = int(a.users)
        print(json.dumps(loop_floor(a)))
        return
    if a.child:
        a.users = int(a.users)
        print(json.dumps(child(a)))
        return
    rows = []
    levels = [int(x) for x in a.users.split(",")]

    before = str(Path(a.before).resolve()) if a.before else ""
    codes = {"": (__file__, None), **({"before": (f"{before}/bench/bench_scale.py", {**os.environ,
             "PYTHONPATH": before})} if before else {})}  # fmt: skip

    def level(n: int, seconds: float, code: str = "") -> list[list[str]]:
        cmd = [sys.executable, codes[code][0], "--child", "--users", str(n), "--rate", str(a.rate), "--seconds",
               str(seconds), "--fake-ms", str(a.fake_ms), "--host", a.host, "--metrics", a.metrics,
               "--switch-interval", str(a.switch_interval), *(["--sync"] if a.sync else []),
               *(["--fast"] if a.fast else [])]  # fmt: skip
        return ([[*cmd, "--loop-floor"]] if a.floor and a.host else []) + [cmd]

    def measure(run: list[str], n: int, code: str = "") -> dict[str, Any]:
        env = codes[code][1]
        proc = subprocess.run(run, capture_output=True, text=True, timeout=180 + a.seconds, check=False, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{n} users failed:\n{proc.stderr[-3000:]}")
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    if a.host:  # discarded: the first level after an idle server ran 10-60 % slower than the same level later
        for run in level(levels[0], min(a.seconds, 5.0)):
            measure(run, levels[0])
    for r in range(a.rounds):  # rounds alternate the order of the levels: drift lands on every level alike
        for n in levels if r % 2 == 0 else levels[::-1]:
            for code in codes if r % 2 == 0 else list(codes)[::-1]:
                for run in level(n, a.seconds, code):
                    rows.append({**measure(run, n, code), "round": r + 1, "code": code, "floor": "--loop-floor" in run})
    if a.rounds > 1:  # then one row per level: the median of its rounds, field by field
        keys = dict.fromkeys((x["users"], x["code"], x["floor"]) for x in rows)
        rows = [{**_median_row([x for x in rows if (x["users"], x["code"], x["floor"]) == key]), "code": key[1],
                 "floor": key[2]} for key in keys]  # fmt: skip
    _print(rows, a.fake_ms)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc[a.label or ("real" if a.host else f"fake-{a.fake_ms:g}ms")] = {
        "rate": a.rate,
        "seconds": a.seconds,
        "rows": rows,
    }
    out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
