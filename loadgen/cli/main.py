"""``loadgen``: run a headless load test (starting an embedded Milvus if no host is given) and manage that server.

This process never imports gevent or Locust: Locust runs as a child process, so its monkey-patching stays there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from loadgen.cli import interrupt, k8s, operations, preflight
from loadgen.cli.capacity import add_arguments as capacity_arguments
from loadgen.cli.ui import add_parser as add_ui_parser
from loadgen.config.settings import Settings, add_options, positive_ints, to_argv
from loadgen.errors import LoadgenError
from loadgen.milvus.server import ENGINES, EmbeddedMilvus, default_data_dir, die_with_parent
from loadgen.report import cli as report_cli
from loadgen.stats.checks import CHECK_FAILED_EXIT_CODE

REPO_LOCUSTFILES = Path(__file__).resolve().parents[2] / "locustfiles"
DEFAULT_LOCUSTFILE = "pymilvus_users.py"


class _Parser(argparse.ArgumentParser):
    run_parser: argparse.ArgumentParser | None = None  # the `run` subcommand's, for --workload defaults

    def error(self, message: str) -> NoReturn:  # one line, not usage + error
        raise LoadgenError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loadgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="headless load test; starts an embedded Milvus unless --host is given")
    parser.run_parser = run
    _run_arguments(run, sweep=False)
    swp = sub.add_parser("sweep", help="one headless run per level: --users 1,5,10 (closed) or --rates 50,100 (open)")
    _run_arguments(swp, sweep=True)

    cap = sub.add_parser("capacity", help="the highest open-model rate that holds --slo-p99-ms (bracket, bisect)")
    _run_arguments(cap, sweep=False)
    capacity_arguments(cap)  # issue 16: loadgen/cli/capacity.py

    cmp = sub.add_parser("compare", help="N sequential sync calls vs N concurrent async calls, per client layer")
    cmp.add_argument("--host", help="Milvus URI (default: start an embedded Milvus)")
    cmp.add_argument("--counts", default="10,100,1000", help="comma-separated N values (default 10,100,1000)")
    cmp.add_argument("--layers", default="pymilvus,langchain,llamaindex", help="client layers to compare")
    cmp.add_argument("--out", type=Path, help="output directory (default results/compare-<timestamp>)")
    cmp.add_argument(
        "--modes", help="retrieval modes instead of layers: the same queries through e.g. dense,bm25,hybrid"
    )  # issue 15: loadgen.cli.modes
    cmp.add_argument("--mode-queries", type=_positive_int, default=50, help="--modes: judged queries per mode")
    cmp.add_argument("--engine", choices=ENGINES, default="milvus")
    cmp.add_argument("--startup-timeout", type=float, default=120.0)
    add_options(cmp, locust=False)

    add_ui_parser(sub)
    operations.add_parser(sub)
    report_cli.add_parser(sub)  # `loadgen report`: options and code live in loadgen/report/

    server = sub.add_parser("server", help="start, stop or inspect an embedded Milvus that outlives the command")
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--data-dir", type=Path, default=default_data_dir(), help="data, logs and state file")
    server.add_argument("--engine", choices=ENGINES, default="milvus")
    server.add_argument("--startup-timeout", type=float, default=120.0)
    server.add_argument("--uri", action="store_true", help="status: print only the URI (for --host $(...))")
    k8s.add_parser(sub)
    return parser


def _run_arguments(run: argparse.ArgumentParser, *, sweep: bool) -> None:
    """``loadgen run``'s arguments; ``loadgen sweep`` takes the same, with lists of levels instead of one."""
    run.add_argument("--host", help="Milvus URI, e.g. http://10.0.0.5:19530 (token: env LOADGEN_MILVUS_TOKEN)")
    if sweep:
        run.add_argument("--users", dest="sweep_users", help="closed model: users per level, e.g. 1,5,10,20,40")
        run.add_argument("--rates", dest="sweep_rates", help="open model: requests/s per level, e.g. 50,100,200")
        run.add_argument("-u", "--users-per-level", dest="users", type=_positive_int, default=20,
                         help="users that carry each --rates level (default 20)")  # fmt: skip
    else:
        run.add_argument("-u", "--users", type=_positive_int, default=20, help="concurrent users (default 20)")
        run.add_argument("--sweep-users", help="one run per level, e.g. 1,5,10,20 (each for --run-time): sweep.json")
        run.add_argument("--sweep-rates", help="one open-model run per --arrival-rate level, e.g. 50,100,200")
    run.add_argument(
        "-r", "--spawn-rate", type=_positive_float, default=None,
        help="users started per second (default 20; open model: all users at once)",
    )  # fmt: skip
    run.add_argument("-t", "--run-time", default="20s", help="how long to run (each level), e.g. 30s, 5m (default 20s)")
    run.add_argument("-f", "--locustfile", help=f"locustfile (default locustfiles/{DEFAULT_LOCUSTFILE})")
    run.add_argument(
        "--processes", type=int, default=0, help="Locust worker processes on this machine (0: one process)"
    )
    run.add_argument("--out", type=Path, help="results directory (default results/run-<timestamp>)")
    run.add_argument("--engine", choices=ENGINES, default="milvus", help="embedded server: real Milvus, or milvus-lite")
    run.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the embedded Milvus")
    run.add_argument("classes", nargs="*", help="user classes to run (default: all in the locustfile)")
    run.add_argument("--workload", type=Path, help="options from a TOML or YAML file (flags win); see README")
    add_options(run, locust=False)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse twice when ``--workload`` is given: its file becomes the defaults, flags on the command line win."""
    from loadgen.config.workload_file import defaults_from

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workload", None):
        assert isinstance(parser, _Parser)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command_parser = sub.choices[args.command]
        command_parser.set_defaults(**defaults_from(args.workload, command_parser))
        args = parser.parse_args(argv)
    return args


def _quiet_clients() -> None:
    """pymilvus logs every failed call with a traceback (a wrong token, a bad filter) and grpc's core logs each
    failed TLS handshake; loadgen turns those failures into one line itself."""
    import logging

    import pymilvus  # noqa: F401 - its import configures its own logger, so the level is set after it

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    # grpc's core reads this once, when it is first imported: failed TLS handshakes are logged at INFO otherwise
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        args = _parse(argv)
        from loadgen.cli import ui as ui_command

        commands = {
            "server": _server, "run": _run, "sweep": _sweep, "compare": _compare, "k8s": k8s.run, "ui": ui_command.run,
            "report": report_cli.run, "capacity": _capacity, "operations": operations.run,
        }  # fmt: skip
        return commands[args.command](args)
    except LoadgenError as exc:
        print(f"loadgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loadgen: interrupted", file=sys.stderr)
        return 130


def _server(args: argparse.Namespace) -> int:
    server = EmbeddedMilvus(args.data_dir, engine=args.engine, startup_timeout=args.startup_timeout)
    if args.action == "start":
        print(f"starting embedded Milvus ({args.engine}) in {server.data_dir} ...", file=sys.stderr)
        started = server.start()
        print(f"Milvus ready at {started.uri} (pid {started.pid}); logs: {started.log_dir}", file=sys.stderr)
        print(started.uri)
        return 0
    if args.action == "stop":
        stopped = server.stop()
        print("stopped" if stopped else f"no embedded Milvus running from {server.data_dir}")
        return 0
    info = server.status()
    if info is None:
        print(f"no embedded Milvus running from {server.data_dir}", file=sys.stderr)
        return 1
    print(
        info.uri
        if args.uri
        else json.dumps(
            {"uri": info.uri, "pid": info.pid, "engine": info.engine, "metrics": info.metrics_url, "logs": info.log_dir}
        )
    )
    return 0


def _locustfile(args: argparse.Namespace) -> Path:
    path = Path(args.locustfile) if args.locustfile else REPO_LOCUSTFILES / DEFAULT_LOCUSTFILE
    if not path.is_file():
        raise LoadgenError(f"locustfile {path} not found; pass -f/--locustfile")
    return path.resolve()


_terminate_on_sigterm = interrupt.terminate_on_sigterm


@contextlib.contextmanager
def _milvus(args: argparse.Namespace) -> Iterator[tuple[str, dict[str, bool]]]:
    """The Milvus to use: ``--host``, or an embedded one started for this command, stopped after and removed unless
    something failed, ``--keep-data`` was given, or the caller set ``keep["logs"]``."""
    keep = {"logs": False}
    if args.host:
        yield args.host, keep
        return
    data_dir = Path(tempfile.mkdtemp(prefix="loadgen-milvus-"))
    server = EmbeddedMilvus(data_dir, engine=args.engine, startup_timeout=args.startup_timeout, die_with_parent=True)
    print(f"loadgen: starting embedded Milvus ({args.engine}); logs: {data_dir / 'logs'}", file=sys.stderr)
    ok = False
    try:
        info = server.start()
        if hasattr(args, "milvus_metrics_url") and not args.milvus_metrics_url:  # issue 16: scrape our own server
            args.milvus_metrics_url = info.metrics_url
        yield info.uri, keep
        ok = True
    except KeyboardInterrupt:
        ok = True  # an interrupt is no failure: no logs to keep (each data dir holds ~450 MB of engine binaries)
        raise
    finally:
        server.stop()
        if ok and not args.keep_data and not keep["logs"]:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"loadgen: embedded Milvus data and logs kept in {data_dir}", file=sys.stderr)


def offline_checks(args: argparse.Namespace) -> Settings:
    """What the options alone can tell is wrong, before any server is started or reached."""
    from loadgen.clients import check_task_names
    from loadgen.workload.embeddings import check_backend

    settings = Settings.from_options(args, args.host or "http://127.0.0.1:19530")
    check_task_names(settings.weights, settings.stream_rates)
    check_backend(settings)
    return settings


def _compare_modes(args: argparse.Namespace) -> int:
    from loadgen.cli import modes

    wanted = modes.parse_modes(args.modes)  # before any server is started or touched
    _quiet_clients()
    offline_checks(args)
    out = (args.out or Path("results") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    _terminate_on_sigterm()
    with _milvus(args) as (host, _keep):
        settings = Settings.from_options(args, host)
        rows, created = modes.compare_modes(settings, wanted, args.mode_queries, out)
        if created and not args.keep_data:
            from loadgen.clients import retrieval

            retrieval.drop(settings)
    print(modes.render(rows))
    print(f"\nresults: {out / 'modes.json'}  chart: {out / 'modes.png'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from loadgen.cli import compare
    from loadgen.milvus import collection

    if args.modes:
        return _compare_modes(args)
    counts = positive_ints(args.counts, "--counts")
    _quiet_clients()
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    from loadgen.clients import layers as known_layers

    unknown = [x for x in layers if x not in known_layers()]
    if unknown or not layers:  # before any server or collection is touched
        bad = unknown[0] if unknown else args.layers
        raise LoadgenError(f"--layers: unknown client layer {bad!r}; choose from {', '.join(known_layers())}")

    checked = offline_checks(args)
    out = (args.out or Path("results") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    preflight.check_run(args, checked, None, out)
    _terminate_on_sigterm()
    with _milvus(args) as (host, _keep):
        base = Settings.from_options(args, host)
        if args.collection == "loadgen_bench":  # the default: compare collections get their own prefix
            base = dataclasses.replace(base, collection="loadgen_compare")
        version = collection.check(base)
        print(f"loadgen: Milvus {version} at {collection.redact_uri(base.uri)}", file=sys.stderr)
        rows = compare.compare(base, layers, counts, out, log=lambda m: print(m, file=sys.stderr))
    print(compare.render(rows))
    print(f"\nresults: {out / 'compare.json'}  chart: {out / 'compare.png'}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    if bool(args.sweep_users) == bool(args.sweep_rates):
        raise LoadgenError("loadgen sweep: give one of --users 1,5,10 (closed model) or --rates 50,100 (open model)")
    return _run(args)


def _levels(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One dict per run: ``{"users": N}`` or ``{"rate": R}``; a single run is one unlabeled level."""
    from loadgen.cli import sweep

    if args.sweep_users and args.sweep_rates:
        raise LoadgenError("--sweep-users and --sweep-rates exclude each other: sweep one of them")
    if args.sweep_users:
        return [{"users": n} for n in sweep.parse_levels(args.sweep_users)]
    if args.sweep_rates:
        return [{"rate": r} for r in sweep.parse_rates(args.sweep_rates)]
    return [{}]


def _check_server(settings: Settings, locustfile: Path) -> str:
    """What the server says before the load: the collection check, then whether it serves every operation the
    locustfile's users will call (an old server: one line, before Locust starts). Returns its version."""
    from loadgen.milvus import collection

    version = collection.check(settings)
    preflight.server_capabilities(locustfile, settings, version)
    print(f"loadgen: Milvus {version} at {collection.redact_uri(settings.uri)}", file=sys.stderr)
    return version


def _run(args: argparse.Namespace) -> int:
    """One headless run, or a sweep: one run per level (same server and collection, filled once)."""
    from loadgen.cli import sweep
    from loadgen.stats import results as summary

    locustfile = _locustfile(args)
    _quiet_clients()
    # bad options fail before anything starts
    checked = offline_checks(args)
    levels = _levels(args)
    swept = levels != [{}]
    out = (args.out or Path("results") / time.strftime("run-%Y%m%d-%H%M%S")).resolve()
    preflight.check_run(args, checked, locustfile, out)  # what Locust or the server would refuse, refused first
    # one run id for every level: a collection the first level creates is this run's, dropped after the last one
    args.run_id = args.run_id or uuid.uuid4().hex[:16]
    _terminate_on_sigterm()
    done: list[tuple[dict[str, Any], dict[str, Any]]] = []
    codes, failed = [], []
    with _milvus(args) as (host, keep):
        settings = Settings.from_options(args, host)
        version = _check_server(settings, locustfile)
        out.mkdir(parents=True, exist_ok=True)  # after every check: bad input writes no results dir
        for i, level in enumerate(levels):
            users = level.get("users", args.users)
            rate = float(level.get("rate", settings.arrival_rate))
            tag = "-".join(f"{k}-{v:g}" for k, v in level.items())
            level_out = out / tag if swept else out
            level_out.mkdir(exist_ok=True)
            last = i == len(levels) - 1  # earlier levels keep the collection for the next one
            spawn_rate = args.spawn_rate or (float(users) if rate else 20.0)  # open model: every user at once
            run = {
                "users": users, "spawn_rate": spawn_rate, "run_time": args.run_time,
                "processes": args.processes, "locustfile": str(locustfile), "server_version": version,
                "embedded": not args.host, "classes": args.classes,
                "model": "open" if rate else "closed", **({"arrival_rate": rate} if rate else {}),
                **({"level": level} if swept else {}),
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
            print_observations(level_out, results)  # INTEGRATION (issue 16): until results.py folds these in
            partial = " (partial: stopped early)" if results["run"].get("partial") else ""  # issue 12
            print(f"\nresults: {level_out / 'results.json'}  report: {level_out / 'report.html'}{partial}")
            level_failed = results.get("checks", {}).get("failed", [])
            done.append((level, results))
            failed += [f"{line} [{tag.replace('-', '=', 1)}]" if swept else line for line in level_failed]
            if getattr(args, "interrupted", False):
                break
        keep["logs"] = any(codes)  # failures: keep the embedded server's logs for a look
    if swept:
        combined = sweep.combine(done)
        print("\n" + sweep.render(combined))
        print(f"\nsweep: {sweep.write(out, combined)}")
    if swept:  # a single run's master printed its own; a sweep's are repeated here, each with its level
        for line in failed:
            print(line, file=sys.stderr)
    return CHECK_FAILED_EXIT_CODE if failed else max(codes)


def _capacity(args: argparse.Namespace) -> int:
    """``loadgen capacity``: open-model steps chosen by ``capacity.search`` on one server and collection; a sweep
    directory (``sweep.json``, one folder per rate) that ``loadgen report`` reads, ``capacity.json``, one line."""
    from loadgen import clients
    from loadgen.cli import capacity, sweep
    from loadgen.milvus import collection

    slo = capacity.check_arguments(args)
    locustfile = _locustfile(args)
    _quiet_clients()
    offline_checks(args)
    out = (args.out or Path("results") / time.strftime("capacity-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _terminate_on_sigterm()
    done: dict[float, dict[str, Any]] = {}
    with _milvus(args) as (host, keep):
        settings = Settings.from_options(args, host)
        version = collection.check(settings)
        print(f"loadgen: Milvus {version} at {collection.redact_uri(settings.uri)}", file=sys.stderr)

        def measure(rate: float) -> capacity.Measurement:
            if getattr(args, "interrupted", False):
                raise KeyboardInterrupt
            step_s = capacity.step_seconds(rate, args.min_samples, capacity.seconds(args.run_time))
            level_out = out / f"rate-{rate:g}"
            level_out.mkdir(exist_ok=True)
            step_args = argparse.Namespace(**{**vars(args), "run_time": f"{step_s:g}s"})
            run = {
                "users": args.users, "spawn_rate": float(args.users), "run_time": step_args.run_time,
                "processes": args.processes, "locustfile": str(locustfile), "server_version": version,
                "embedded": not args.host, "classes": args.classes, "model": "open", "arrival_rate": rate,
                "level": {"rate": rate},
            }  # fmt: skip
            print(f"loadgen: capacity step {len(done) + 1}: {rate:g} req/s for {step_s:g} s", file=sys.stderr)
            code = _locust(
                step_args, locustfile, settings, level_out,
                users=args.users, spawn_rate=float(args.users), rate=rate, keep_data=True, run=run,
            )  # fmt: skip
            results = _level_results(level_out, code) or {}
            done[rate] = results
            m = capacity.measurement(results, rate)
            print(f"loadgen:   p99 {m.p99_ms:.2f} ms, errors {m.error_rate:.2%}: " + (
                "holds" if not slo.judge(m) else "; ".join(slo.judge(m))), file=sys.stderr)  # fmt: skip
            return m

        outcome = capacity.search(
            measure, slo, start=args.start_rate, growth=args.growth, tolerance=args.tolerance,
            max_steps=args.max_steps, max_rate=args.max_rate,
        )  # fmt: skip
        if not args.keep_data:  # every step kept the collection for the next: drop it now, if loadgen created it
            used = {r["type"].split("-")[0] for res in done.values() for r in res.get("requests", [])}
            for layer in sorted(used & set(clients.layers())):
                clients.adapter(layer).drop(settings)
        keep["logs"] = not done
    levels = [({"rate": rate}, done[rate]) for rate in sorted(done) if done[rate]]
    sweep.write(out, sweep.combine(levels))
    (out / "capacity.json").write_text(json.dumps(outcome.to_dict(slo), indent=2) + "\n")
    print(sweep.render(sweep.combine(levels)))
    print(f"\nsweep: {out / 'sweep.json'}  capacity: {out / 'capacity.json'}")
    print(capacity.line(outcome, slo))
    return 0


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


def print_observations(out: Path, results: dict[str, Any]) -> None:
    """Client p99 beside server p99 per operation (``server.json``), and the generator's saturation line."""
    from loadgen.stats import generator, server_metrics

    server = results.get("server") or server_metrics.read_section(out / "server.json")
    for line in server_metrics.summary_lines(server, results["requests"]):
        print(line)
    saturated = (results.get("generator") or generator.read_section(out / "generator.json")).get("line")
    if saturated:
        print(saturated)


def _processes_args(processes: int) -> list[str]:
    """``--processes N`` on a master port of our own: Locust's default 5557 may be taken (another run, a master)."""
    from loadgen.milvus.server import free_ports

    (port,) = free_ports(1)
    return ["--processes", str(processes), "--master-bind-port", str(port), "--master-port", str(port)]


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
        "--html", str(out / "report.html"), "--json-file", str(out / "locust"),
        "--only-summary", "--stop-timeout", str(int(settings.timeout) + 2),
        *(_processes_args(args.processes) if args.processes else []),
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


if __name__ == "__main__":
    sys.exit(main())
