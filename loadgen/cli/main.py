"""``loadgen``: run a headless load test (starting an embedded Milvus if no host is given) and manage that server.

This process never imports gevent or Locust: Locust runs as a child process, so its monkey-patching stays there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from loadgen.cli import coldwarm, compare_command, k8s, operations, run, runbook
from loadgen.cli.capacity import add_arguments as capacity_arguments
from loadgen.cli.common import DEFAULT_LOCUSTFILE
from loadgen.cli.ui import add_parser as add_ui_parser
from loadgen.config import paths
from loadgen.config.settings import add_options
from loadgen.errors import LoadgenError
from loadgen.milvus.server import ENGINES, EmbeddedMilvus, default_data_dir
from loadgen.report import cli as report_cli
from loadgen.stats import tracing


class _Parser(argparse.ArgumentParser):
    run_parser: argparse.ArgumentParser | None = None  # the `run` subcommand's, for --workload defaults

    def error(self, message: str) -> NoReturn:  # one line, not usage + error
        raise LoadgenError(f"{self.prog}: {message}")


ROUNDS_HELP = (
    "measure each level this many times, levels interleaved (default 1): the report shows each figure's spread and "
    "marks a --baseline delta that lies inside it"
)
OTEL_HELP = (
    "Locust's --otel: each store call an OpenTelemetry span, sent by OTLP to OTEL_EXPORTER_OTLP_ENDPOINT "
    "(the embedded Milvus exports its own spans there too)"
)


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
    capacity_arguments(cap)  # loadgen/cli/capacity.py
    cap.add_argument(
        "--rounds", type=_positive_int, default=1,
        help="measure each step this many times in a row (default 1): the SLO judges medians, the report the spread",
    )  # fmt: skip

    cmp = sub.add_parser("compare", help="N sequential sync calls vs N concurrent async calls, per client layer")
    cmp.add_argument("--host", help="Milvus URI (default: start an embedded Milvus)")
    cmp.add_argument("--counts", default="10,100,1000", help="comma-separated N values (default 10,100,1000)")
    cmp.add_argument("--layers", default="pymilvus,langchain,llamaindex", help="client layers to compare")
    cmp.add_argument("--out", type=Path, help="output directory (default results/compare-<timestamp>)")
    cmp.add_argument(
        "--modes", help="retrieval modes instead of layers: the same queries through e.g. dense,bm25,hybrid"
    )  # loadgen.cli.modes
    cmp.add_argument("--mode-queries", type=_positive_int, default=50, help="--modes: judged queries per mode")
    cmp.add_argument("--engine", choices=ENGINES, default="milvus")
    cmp.add_argument("--startup-timeout", type=float, default=120.0)
    add_options(cmp, locust=False, load=False)  # no load model, no checks: its own experiment

    runbook.add_parser(sub)  # loadgen/cli/runbook.py
    add_ui_parser(sub)
    coldwarm.add_parser(sub)  # loadgen/cli/coldwarm.py
    operations.add_parser(sub)
    report_cli.add_parser(sub)  # `loadgen report`: options and code live in loadgen/report/

    server = sub.add_parser("server", help="start, stop or inspect an embedded Milvus that outlives the command")
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--data-dir", type=Path, default=default_data_dir(), help="data, logs and state file")
    server.add_argument("--engine", choices=ENGINES, default="milvus")
    server.add_argument("--startup-timeout", type=float, default=120.0)
    server.add_argument("--uri", action="store_true", help="status: print only the URI (for --host $(...))")
    server.add_argument("--otel", action="store_true", help="start: its spans to OTEL_EXPORTER_OTLP_ENDPOINT")
    k8s.add_parser(sub)
    return parser


def _run_arguments(run: argparse.ArgumentParser, *, sweep: bool) -> None:
    """``loadgen run``'s arguments; ``loadgen sweep`` takes the same, with lists of levels instead of one."""
    run.add_argument("--host", help="Milvus URI, e.g. http://10.0.0.5:19530 (token: env LOADGEN_MILVUS_TOKEN)")
    if sweep:
        run.add_argument("--users", dest="sweep_users", help="closed model: users per level, e.g. 1,5,10,20,40")
        run.add_argument("--rounds", type=_positive_int, default=1, help=ROUNDS_HELP)
        run.add_argument("--rates", dest="sweep_rates", help="open model: requests/s per level, e.g. 50,100,200")
        run.add_argument("-u", "--users-per-level", dest="users", type=_positive_int, default=20,
                         help="users that carry each --rates level (default 20)")  # fmt: skip
    else:
        run.add_argument("-u", "--users", type=_positive_int, default=20, help="concurrent users (default 20)")
        # one way to sweep is shown (`loadgen sweep --users/--rates`); these are its older spelling, still accepted
        run.add_argument("--sweep-users", help=argparse.SUPPRESS)
        run.add_argument("--sweep-rates", help=argparse.SUPPRESS)
    run.add_argument(
        "-r", "--spawn-rate", type=_positive_float, default=None,
        help="users started per second (default 20; open model: all users at once)",
    )  # fmt: skip
    run.add_argument("-t", "--run-time", default="20s", help="how long to run (each level), e.g. 30s, 5m (default 20s)")
    run.add_argument(
        "--reset-stats", action="store_true",
        help="Locust's: reset every figure (Locust's and loadgen's) once all users are spawned (see also --warmup)",
    )  # fmt: skip
    run.add_argument("-f", "--locustfile", help=f"locustfile (default locustfiles/{DEFAULT_LOCUSTFILE})")
    run.add_argument(
        "--processes", type=int, default=0, help="Locust worker processes on this machine (0: one process)"
    )
    run.add_argument("--out", type=Path, help="results directory (default results/run-<timestamp>)")
    run.add_argument("--engine", choices=ENGINES, default="milvus", help="embedded server: real Milvus, or milvus-lite")
    run.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the embedded Milvus")
    run.add_argument("classes", nargs="*", help="user classes to run (default: all in the locustfile)")
    run.add_argument("--workload", type=Path, help="options from a TOML or YAML file (flags win); see README")
    run.add_argument("--otel", action="store_true", help=OTEL_HELP)
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


def main(argv: list[str] | None = None) -> int:
    # grpc's core reads this once, when it is first imported: failed TLS handshakes are logged at INFO otherwise
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        args = _parse(argv)
        from loadgen.cli import ui as ui_command

        commands = {
            "server": _server, "run": run.run, "sweep": run.sweep_command, "compare": compare_command.command,
            "k8s": k8s.run, "ui": ui_command.run, "report": report_cli.run, "capacity": run.capacity_command,
            "operations": operations.run, "runbook": runbook.command, "coldwarm": coldwarm.run,
        }  # fmt: skip
        return commands[args.command](args)
    except LoadgenError as exc:
        print(f"loadgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loadgen: interrupted", file=sys.stderr)
        return 130


def _server(args: argparse.Namespace) -> int:
    config = tracing.milvus_trace_config() if args.otel and args.engine == "milvus" else None
    server = EmbeddedMilvus(args.data_dir, engine=args.engine, startup_timeout=args.startup_timeout, config=config)
    if args.action == "start":
        paths.writable_dir(args.data_dir, "--data-dir")
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


if __name__ == "__main__":
    sys.exit(main())
