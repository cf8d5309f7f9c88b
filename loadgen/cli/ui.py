"""``loadgen ui``: Locust's web UI with every user class in its class picker, on an embedded Milvus unless ``--host``.

Like ``loadgen run`` this process never imports gevent: Locust runs as a child (in its own session, so a Ctrl-C in
the terminal reaches loadgen only, which stops Locust once, cleanly, then stops the embedded Milvus).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from loadgen.cli import interrupt, preflight
from loadgen.config.settings import Settings, add_options, to_argv
from loadgen.errors import LoadgenError
from loadgen.milvus.server import ENGINES, die_with_parent

ALL_USERS = "all_users.py"
DEFAULT_WEB_PORT = 8089


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    ui = sub.add_parser("ui", help="Locust's web UI with every user class; starts an embedded Milvus unless --host")
    ui.add_argument("--host", help="Milvus URI, e.g. http://10.0.0.5:19530 (token: env LOADGEN_MILVUS_TOKEN)")
    ui.add_argument("--web-port", type=_port, default=DEFAULT_WEB_PORT, help="web UI port (default 8089)")
    ui.add_argument("--web-host", default="127.0.0.1", help="interface the web UI listens on (default 127.0.0.1)")
    ui.add_argument("-f", "--locustfile", help=f"locustfile (default locustfiles/{ALL_USERS}: every user class)")
    ui.add_argument("--processes", type=int, default=0, help="Locust worker processes on this machine (0: one)")
    ui.add_argument("--engine", choices=ENGINES, default="milvus", help="embedded server: real Milvus, or milvus-lite")
    ui.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the embedded Milvus")
    ui.add_argument(
        "--out", type=Path, default=Path("results"),
        help="each test started from the form writes its results.json and report to OUT/ui-<start time>/ "
        "(default results)",
    )  # fmt: skip
    add_options(ui, locust=False)  # their values become the form's defaults


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the web server: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise LoadgenError(f"--web-port {port} on {host} {why}; pass another --web-port") from None


def run(args: argparse.Namespace) -> int:
    from loadgen.cli import common as cli
    from loadgen.milvus import collection

    if not args.locustfile:
        args.locustfile = str(cli.REPO_LOCUSTFILES / ALL_USERS)
    locustfile = cli.locustfile(args)
    checked = cli.offline_checks(args)  # bad options: nothing starts
    preflight.check_run(args, checked, locustfile, args.out)
    _check_port_free(args.web_host, args.web_port)
    cli.terminate_on_sigterm()
    with cli.milvus(args) as (host, keep):
        settings = Settings.from_options(args, host)
        version = collection.check(settings)
        preflight.server_capabilities(locustfile, settings, version)
        print(f"loadgen: Milvus {version} at {collection.redact_uri(settings.uri)}", file=sys.stderr)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--class-picker", "--host", settings.uri,
            "--web-host", args.web_host, "--web-port", str(args.web_port),
            "--stop-timeout", str(int(settings.timeout) + 2),
            *(cli.processes_args(args.processes) if args.processes else []),  # a master port of its own
            *to_argv(args),
            # each test started from the form writes its results into a folder of its own there (loadgen.web.start)
            "--results-dir", str(args.out.resolve()),
        ]  # fmt: skip
        # the token travels in the environment only (never argv, never the page: see loadgen.web.tab)
        env = {**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1", "LOADGEN_MILVUS_TOKEN": settings.milvus_token}
        print(f"loadgen: web UI at http://{args.web_host}:{args.web_port} (Ctrl-C to stop)", file=sys.stderr)
        stop_url = f"http://{'127.0.0.1' if args.web_host in ('0.0.0.0', '') else args.web_host}:{args.web_port}/stop"
        code = _serve(cmd, env, settings.timeout, stop_url)
        keep["logs"] = code not in (0, 1)  # 1: some requests failed, which the UI showed; worse: keep the logs
    return code


def _stop_test(url: str, timeout: float) -> None:
    """Stop a running test first, as the Stop button does: Locust's own shutdown drops loadgen's collection (at
    ``quitting``) while users still run, and their last calls would fail with "collection not found"."""
    with contextlib.suppress(OSError):  # no web UI to ask (it failed, or is gone): SIGTERM alone stops everything
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=timeout).read()


def _serve(cmd: list[str], env: dict[str, str], timeout: float, stop_url: str) -> int:
    # if loadgen itself is killed, Locust gets SIGTERM instead of running on as an orphan
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,  # Locust reads keys from a terminal; this one belongs to loadgen
        start_new_session=True,
        preexec_fn=lambda: die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - sets only the parent-death signal
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see cli.interrupt.terminate_on_sigterm)
        # Locust stops its users, fires quitting (loadgen drops its collection); a second signal kills it at once
        return interrupt.stop_child(
            proc, signal.SIGTERM, timeout + 20, before=lambda: _stop_test(stop_url, min(timeout + 5, 10))
        )
    finally:
        interrupt.kill_group(proc)  # a --processes worker left behind
