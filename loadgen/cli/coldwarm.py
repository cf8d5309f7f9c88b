"""``loadgen coldwarm``: what the first searches cost after the collection is loaded again and after the server
restarts, against the warm steady state (``loadgen.milvus.coldwarm``). Writes ``coldwarm.json``, which ``loadgen
report`` shows as a section when the folder is given to it.

Release and load only on a collection loadgen created (it makes the collection unavailable for a while); the restart
only on the embedded server this command started (no command restarts a server it was given with ``--host``).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadgen.config import paths
from loadgen.config.settings import Settings, add_options
from loadgen.errors import LoadgenError
from loadgen.milvus.server import ENGINES, EmbeddedMilvus


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "coldwarm", help="first searches after a release and load, and after a server restart, against warm ones"
    )
    cmd.add_argument("--host", help="Milvus URI (default: start an embedded Milvus, which is also restarted)")
    cmd.add_argument("--seconds", type=float, default=10.0, help="serial searches per phase after its first success")
    cmd.add_argument(
        "--restart-command", help="with --host: a shell command that restarts your Milvus (returns once it is asked "
        "to; e.g. kubectl rollout restart ...), measured as the embedded server's restart is",
    )  # fmt: skip
    cmd.add_argument(
        "--scale-command", help="a shell command that adds a replica (e.g. kubectl patch milvus ... queryNode "
        "replicas, or a load with more replicas): the searches from its start, against warm",
    )  # fmt: skip
    cmd.add_argument("--out", type=Path, help="output directory (default results/coldwarm-<timestamp>)")
    cmd.add_argument("--engine", choices=ENGINES, default="milvus")
    cmd.add_argument("--startup-timeout", type=float, default=120.0)
    add_options(cmd, locust=False, load=False)


def _shell(command: str, flag: str) -> None:
    """Run the user's command (a shell line, as typed); one line if it fails. Bounded: a command that has not returned
    in ten minutes is stopped."""
    try:
        done = subprocess.run(command, shell=True, check=False, timeout=600, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LoadgenError(f"{flag} did not return within 600 s") from None
    if done.returncode != 0:
        raise LoadgenError(f"{flag} failed (exit code {done.returncode}): nothing measured after it")


def run(args: argparse.Namespace) -> int:
    from loadgen.cli.common import quiet_clients
    from loadgen.milvus import coldwarm, collection

    quiet_clients()  # a search refused while the server restarts is counted, not printed with its traceback
    if not args.seconds > 0:
        raise LoadgenError(f"--seconds must be positive, got {args.seconds}")
    Settings.from_options(args, args.host or "http://127.0.0.1:19530")  # bad options fail before a server starts
    if args.restart_command and not args.host:
        raise LoadgenError("--restart-command restarts your Milvus: give its --host (the embedded one restarts itself)")
    out = (args.out or Path("results") / time.strftime("coldwarm-%Y%m%d-%H%M%S")).resolve()
    paths.writable_dir(out)
    server, data_dir = None, None
    if not args.host:
        data_dir = Path(tempfile.mkdtemp(prefix="loadgen-milvus-"))
        server = EmbeddedMilvus(
            data_dir, engine=args.engine, startup_timeout=args.startup_timeout, die_with_parent=True
        )
        print(f"loadgen: starting embedded Milvus ({args.engine}); logs: {data_dir / 'logs'}", file=sys.stderr)
    try:
        host = server.start().uri if server is not None else args.host
        settings = Settings.from_options(args, host)
        prepared = collection.prepare(settings, progress=True)
        try:
            if not prepared.owned:
                raise LoadgenError(
                    f"loadgen coldwarm releases and loads collection {prepared.name!r}, which loadgen did not create: "
                    "pass another --collection"
                )
            restart: Callable[[], Any] | None = None
            if server is not None and args.engine == "milvus":
                restart = server.restart
            if args.restart_command:
                restart = functools.partial(_shell, args.restart_command, "--restart-command")
            scale = functools.partial(_shell, args.scale_command, "--scale-command") if args.scale_command else None
            doc = coldwarm.measure(settings, lambda: collection.connect(settings), seconds=args.seconds,
                                   restart=restart, scale=scale)  # fmt: skip
        finally:
            collection.release(settings, prepared.name)  # dropped if this command created it
        doc["server_version"] = prepared.server_version
        doc["restart"] = (
            "--restart-command" if args.restart_command
            else "embedded server" if restart is not None
            else "not measured: the embedded Milvus, or --restart-command"
        )  # fmt: skip
        paths.make_dir(out)
        (out / coldwarm.FILE).write_text(json.dumps(doc, indent=2) + "\n")
        for line in coldwarm.lines(doc):
            print(line)
        if restart is None:
            print(f"restart: {doc['restart']} (this command restarts only a server it started, or runs yours)")
        print(f"\ncoldwarm: {out / coldwarm.FILE}")
        return 0
    finally:
        if server is not None:
            server.stop()
            if data_dir is not None:
                shutil.rmtree(data_dir, ignore_errors=True)
