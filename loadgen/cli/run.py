"""``loadgen run`` (one headless run, or a sweep: one run per level), ``loadgen sweep`` and ``loadgen capacity``: each
level is one Locust process (or a master with ``--processes`` workers) against one server and collection.

This process never imports gevent or Locust: Locust runs as a child process, so its monkey-patching stays there.
What needs a client library (the checks against the server, the observations after each level, the last drop) runs
in a short-lived child (``common.isolated``), so this process stays small while Locust's runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from loadgen.cli import common, interrupt, preflight
from loadgen.cli.common import check_server, isolated, milvus, offline_checks, quiet_clients, terminate_on_sigterm
from loadgen.config import paths, values
from loadgen.config.settings import Settings, to_argv
from loadgen.config.values import redact_uri
from loadgen.errors import LoadgenError
from loadgen.milvus.server import die_with_parent
from loadgen.stats import rounds, tracing
from loadgen.stats.checks import CHECK_FAILED_EXIT_CODE


def sweep_command(args: argparse.Namespace) -> int:
    if bool(args.sweep_users) == bool(args.sweep_rates):
        raise LoadgenError("loadgen sweep: give one of --users 1,5,10 (closed model) or --rates 50,100 (open model)")
    return run(args)


def sweep_levels(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One dict per run: ``{"users": N}`` or ``{"rate": R}``; a single run is one unlabeled level."""
    from loadgen.cli import sweep

    if args.sweep_users and args.sweep_rates:
        raise LoadgenError("--sweep-users and --sweep-rates exclude each other: sweep one of them")
    if getattr(args, "rounds", 1) > 1 and not (args.sweep_users or args.sweep_rates):
        raise LoadgenError("--rounds repeats the levels of a sweep: loadgen sweep --users 1,5,10 --rounds 3")
    if args.sweep_users:
        return [{"users": n} for n in sweep.parse_levels(args.sweep_users)]
    if args.sweep_rates:
        return [{"rate": r} for r in sweep.parse_rates(args.sweep_rates)]
    return [{}]


def run(args: argparse.Namespace) -> int:
    """One headless run, or a sweep: one run per level (same server and collection, filled once)."""
    from loadgen.stats import results as summary

    locustfile = common.locustfile(args)
    levels = sweep_levels(args)
    swept, n_rounds = levels != [{}], getattr(args, "rounds", 1)
    out = (args.out or Path("results") / time.strftime("run-%Y%m%d-%H%M%S")).resolve()
    # bad options fail before anything starts, and what Locust or the server would refuse is refused first
    isolated(_before_start, args, locustfile, out)
    # one run id for every level: a collection the first level creates is this run's, dropped after the last one
    args.run_id = args.run_id or uuid.uuid4().hex[:16]
    terminate_on_sigterm()
    done: list[tuple[dict[str, Any], dict[str, Any]]] = []
    codes, failed = [], []
    with milvus(args) as (host, keep):
        settings = Settings.from_options(args, host)
        version = isolated(check_server, settings, locustfile)
        print(f"loadgen: Milvus {version} at {redact_uri(settings.uri)}", file=sys.stderr)
        if args.otel:
            print(tracing.server_line(version, "" if args.host else args.engine), file=sys.stderr)
        paths.make_dir(out)  # after every check: bad input writes no results dir
        order = rounds.schedule(levels, n_rounds)  # one round: each level once, in order
        for i, (rnd, level) in enumerate(order):
            users = level.get("users", args.users)
            rate = float(level.get("rate", settings.arrival_rate))
            tag = "-".join(f"{k}-{v:g}" for k, v in level.items())
            level_out = (out / tag / f"round-{rnd}" if n_rounds > 1 else out / tag) if swept else out
            paths.make_dir(level_out)
            last = i == len(order) - 1  # earlier levels keep the collection for the next one
            spawn_rate = args.spawn_rate or (float(users) if rate else 20.0)  # open model: every user at once
            run = {
                "users": users, "spawn_rate": spawn_rate, "run_time": args.run_time,
                "processes": args.processes, "locustfile": str(locustfile), "server_version": version,
                "embedded": not args.host, "classes": args.classes,
                "model": "open" if rate else "closed", **({"arrival_rate": rate} if rate else {}),
                **({"level": level} if swept else {}), **({"round": rnd, "rounds": n_rounds} if n_rounds > 1 else {}),
            }  # fmt: skip
            code = _locust(
                args, locustfile, settings, level_out,
                users=users, spawn_rate=spawn_rate, rate=rate, keep_data=args.keep_data or not last, run=run,
            )  # fmt: skip
            codes.append(code)
            results = _level_results(level_out, code)
            if results is None:
                if getattr(args, "interrupted", False):
                    break
                continue
            print(summary.render_table(results))
            for line in isolated(observations, level_out, results):
                print(line)
            partial = " (partial: stopped early)" if results["run"].get("partial") else ""
            print(f"\nresults: {level_out / 'results.json'}  report: {level_out / 'report.html'}{partial}")
            level_failed = results.get("checks", {}).get("failed", [])
            done.append((level, results))
            where = tag.replace("-", "=", 1) + (f" round {rnd}" if n_rounds > 1 else "")
            failed += [f"{line} [{where}]" if swept else line for line in level_failed]
            if getattr(args, "interrupted", False):
                break
        keep["logs"] = any(codes)  # failures: keep the embedded server's logs for a look
    if swept:
        _sweep_end(out, done, failed)
    return CHECK_FAILED_EXIT_CODE if failed else max(codes)


def _sweep_end(out: Path, done: list[tuple[dict[str, Any], dict[str, Any]]], failed: list[str]) -> None:
    """A sweep's table and sweep.json; its failed checks repeated, each with its level (a single run's master
    printed its own)."""
    from loadgen.cli import sweep

    combined = sweep.combine(done)
    print("\n" + sweep.render(combined))
    print(f"\nsweep: {sweep.write(out, combined)}")
    for line in failed:
        print(line, file=sys.stderr)


def capacity_command(args: argparse.Namespace) -> int:
    """``loadgen capacity``: open-model steps chosen by ``capacity.search`` on one server and collection; a sweep
    directory (``sweep.json``, one folder per rate) that ``loadgen report`` reads, ``capacity.json``, one line."""
    from loadgen import clients
    from loadgen.cli import capacity

    slo = capacity.check_arguments(args)
    locustfile = common.locustfile(args)
    out = (args.out or Path("results") / time.strftime("capacity-%Y%m%d-%H%M%S")).resolve()
    isolated(_before_start, args, locustfile, out)
    terminate_on_sigterm()
    done: dict[float, list[dict[str, Any]]] = {}  # each step's rate: its rounds' results
    n_rounds = args.rounds
    ingest = slo.max_index_lag_s is not None
    with milvus(args) as (host, keep):
        settings = Settings.from_options(args, host)
        version = isolated(check_server, settings, None)
        print(f"loadgen: Milvus {version} at {redact_uri(settings.uri)}", file=sys.stderr)
        if args.otel:
            print(tracing.server_line(version, "" if args.host else args.engine), file=sys.stderr)
        paths.make_dir(out)  # after every check: bad input writes no results dir

        def measure(rate: float) -> capacity.Measurement:
            if getattr(args, "interrupted", False):
                raise KeyboardInterrupt
            step_s = capacity.step_seconds(rate, args.min_samples, capacity.seconds(args.run_time))
            step_args, search_rate, load = _capacity_load(args, settings, rate, step_s, ingest=ingest)
            unit = "inserts/s" if ingest else "req/s"
            warm = values.duration(args.warmup, "warmup")
            print(f"loadgen: capacity step {len(done) + 1}: {rate:g} {unit} for {step_s:g} s"
                  + (f" after a {warm:g} s warm-up" if warm else "")
                  + (f", {n_rounds} rounds" if n_rounds > 1 else ""), file=sys.stderr)  # fmt: skip
            done[rate] = []
            for rnd in range(1, n_rounds + 1):  # a step's rounds run one after another: the next step waits on them
                step_dir = out / (f"insert-rate-{rate:g}" if ingest else f"rate-{rate:g}")
                level_out = step_dir / f"round-{rnd}" if n_rounds > 1 else step_dir
                paths.make_dir(level_out)
                run = {
                    "users": args.users, "spawn_rate": float(args.users), "run_time": step_args.run_time,
                    "processes": args.processes, "locustfile": str(locustfile), "server_version": version,
                    "embedded": not args.host, "classes": args.classes, **load, "level": {"rate": rate},
                    **({"round": rnd, "rounds": n_rounds} if n_rounds > 1 else {}),
                }  # fmt: skip
                code = _locust(
                    step_args, locustfile, settings, level_out, users=args.users,
                    spawn_rate=float(args.users) if search_rate else (args.spawn_rate or 20.0), rate=search_rate,
                    keep_data=True, run=run,
                )  # fmt: skip
                done[rate].append(_level_results(level_out, code) or {})
                if getattr(args, "interrupted", False):
                    raise KeyboardInterrupt
            m = capacity.over_rounds([capacity.measurement(one, rate, streams=ingest) for one in done[rate]])
            lag = "" if m.index_lag_s is None else f", index lag {m.index_lag_s:.2f} s".replace("inf s", "unbounded")
            print(f"loadgen:   p99 {m.p99_ms:.2f} ms, errors {m.error_rate:.2%}{lag}: " + (
                "holds" if not slo.judge(m) else "; ".join(slo.judge(m))), file=sys.stderr)  # fmt: skip
            return m

        outcome = capacity.search(
            measure, slo, start=args.start_rate, growth=args.growth, tolerance=args.tolerance,
            max_steps=args.max_steps, max_rate=args.max_rate,
        )  # fmt: skip
        if not args.keep_data:  # every step kept the collection for the next: drop it now, if loadgen created it
            used = {r["type"].split("-")[0] for res in done.values() for one in res for r in one.get("requests", [])}
            isolated(_drop, settings, sorted(used & set(clients.layers())))
        keep["logs"] = not done
    _capacity_end(args, out, done, outcome, slo)
    return 0


def _capacity_end(
    args: argparse.Namespace, out: Path, done: dict[float, list[dict[str, Any]]], outcome: Any, slo: Any
) -> None:
    """The search's sweep dir (every step and round), capacity.json, its table and its one-line answer."""
    from loadgen.cli import capacity, sweep

    levels = [({"rate": rate}, one) for rate in sorted(done) for one in done[rate] if one]
    sweep.write(out, sweep.combine(levels))
    doc = outcome.to_dict(slo)
    if (given := capacity.cost.prices(args)) is not None:  # what the answer costs, at the prices given
        doc["cost"] = capacity.cost.figures(outcome.answer or 0.0, given)
    (out / "capacity.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(sweep.render(sweep.combine(levels)))
    print(f"\nsweep: {out / 'sweep.json'}  capacity: {out / 'capacity.json'}")
    print(capacity.line(outcome, slo))
    if "cost" in doc:
        print(capacity.cost.line(doc["cost"], "at the SLO"))


def _capacity_load(
    args: argparse.Namespace, settings: Settings, rate: float, step_s: float, *, ingest: bool
) -> tuple[argparse.Namespace, float, dict[str, Any]]:
    """One capacity step's options, its search rate (0: closed model) and its run section's load model: the rate is
    the searches' (open model), or with ``--max-index-lag-s`` the insert stream's beside the searches as given."""
    # a warm-up comes on top of the measured step, which still needs its samples
    run_s = math.ceil(step_s + values.duration(args.warmup, "warmup"))
    step_args = argparse.Namespace(**{**vars(args), "run_time": f"{run_s:g}s"})
    search_rate = settings.arrival_rate if ingest else rate
    if ingest:
        step_args.stream_rates, step_args.ingest_readiness = f"insert={rate:g}", True
    load: dict[str, Any] = {"model": "open" if search_rate else "closed"}
    load.update({"arrival_rate": search_rate} if search_rate else {}, **({"insert_rate": rate} if ingest else {}))
    return step_args, search_rate, load


def _level_results(out: Path, code: int) -> dict[str, Any] | None:
    """The results.json Locust's master wrote for one level (every figure and the checks are its), with the Locust
    process's exit code added to its run section; None, said in one line, when the run wrote none."""
    path = out / "results.json"
    if not path.exists():
        print(
            f"loadgen: the run wrote no results (Locust exit code {code}); its output above says why", file=sys.stderr
        )
        return None
    results: dict[str, Any] = json.loads(path.read_text())
    results["run"]["exit_code"] = code
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _before_start(args: argparse.Namespace, locustfile: Path, out: Path) -> None:
    """What the options alone, Locust's own parsers and the server's limits refuse (``preflight``)."""
    quiet_clients()
    preflight.check_run(args, offline_checks(args), locustfile, out)


def observations(out: Path, results: dict[str, Any]) -> list[str]:
    """Client p99 beside server p99 per operation (``server.json``), and the generator's saturation line."""
    from loadgen import clients
    from loadgen.stats import generator, server_metrics

    server = results.get("server") or server_metrics.read_section(out / "server.json")
    lines = server_metrics.summary_lines(server, results["requests"], clients.server_function)
    saturated = (results.get("generator") or generator.read_section(out / "generator.json")).get("line")
    return [*lines, *([saturated] if saturated else [])]


def _drop(settings: Settings, layers: list[str]) -> None:
    from loadgen import clients

    quiet_clients()
    for layer in layers:
        clients.adapter(layer).drop(settings)


def _locust(
    args: argparse.Namespace,
    locustfile: Path,
    settings: Settings,
    out: Path,
    *,
    users: int,
    spawn_rate: float,
    rate: float,
    keep_data: bool,
    run: dict[str, Any],
) -> int:
    level = argparse.Namespace(
        **{**vars(args), "keep_data": keep_data, "arrival_rate": rate, "results_dir": str(out),
           "run_info": json.dumps(run)}
    )  # fmt: skip
    options = to_argv(level)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "-u", str(users), "-r", f"{spawn_rate:g}", "-t", args.run_time, "--host", settings.uri,
        "--csv", str(out / "stats"), "--csv-full-history",  # per-second history: what a fault did, and when
        "--html", str(out / "locust-report.html"), "--json-file", str(out / "locust"),  # ours: report.html
        "--only-summary", "--stop-timeout", str(int(settings.timeout) + 2),
        *(["--otel"] if args.otel else []),
        *(common.processes_args(args.processes) if args.processes else []),
        *(["--reset-stats"] if getattr(args, "reset_stats", False) else []),
        *options, *args.classes,
    ]  # fmt: skip
    env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1", "LOADGEN_MILVUS_TOKEN": settings.milvus_token}
    # its own session: a Ctrl-C in the terminal reaches loadgen only, which stops Locust once (see cli/interrupt.py);
    # if loadgen itself is killed, Locust gets SIGTERM (it stops cleanly) instead of running on as an orphan
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: die_with_parent(signal.SIGTERM),  # noqa: PLW1509
    )  # fmt: skip
    try:
        return proc.wait()
    except KeyboardInterrupt:
        args.interrupted = True  # a sweep stops after this level
        # SIGTERM, not SIGINT: one that lands while Locust is still importing ends it without a KeyboardInterrupt
        # traceback; later, Locust stops its users, then writes its results (see locust/shutdown.py). The grace
        # is a backstop (a Locust bug, a hung server)
        return interrupt.stop_child(proc, signal.SIGTERM, settings.timeout + 15)
    finally:
        interrupt.kill_group(proc)  # a --processes worker left behind by its master
