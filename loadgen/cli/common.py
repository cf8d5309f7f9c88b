"""What the ``loadgen`` commands share: the locustfile to run, the Milvus to run against (``--host``, or an embedded
one started for the command), the checks the options alone allow, quiet client logs, and ``isolated``.

This process never imports gevent or Locust: Locust runs as a child process, so its monkey-patching stays there. The
load commands (run, sweep, capacity) also keep the client libraries out of it (``isolated``): it waits beside Locust's
process for the whole run, and pymilvus alone (with pandas and grpc) would more than triple its memory
(bench/COST.md section 12).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from loadgen.cli import interrupt, preflight
from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus.server import EmbeddedMilvus
from loadgen.stats import tracing

T = TypeVar("T")
REPO_LOCUSTFILES = Path(__file__).resolve().parents[2] / "locustfiles"
DEFAULT_LOCUSTFILE = "pymilvus_users.py"


def isolated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a forked child process: its value, or its ``LoadgenError`` raised here. What it imports
    (pymilvus, the adapters) stays in the child, which ends when it returns. ``fn`` must not print: it returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")  # this process has no threads of its own: a fork is safe
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        try:
            answer: tuple[Any, ...] = ("value", fn(*args))
        except LoadgenError as exc:
            answer = ("error", str(exc), exc.exit_code)
        except KeyboardInterrupt:
            answer = ("interrupted",)
        send.send(answer)

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        answer = receive.recv()
    except EOFError:  # it died (a crash prints its own traceback)
        answer = ("error", f"a check in a child process ended without an answer (exit code {process.exitcode})", 1)
    finally:
        process.join()
    if answer[0] == "error":
        raise LoadgenError(answer[1], answer[2])
    if answer[0] == "interrupted":
        raise KeyboardInterrupt
    value: T = answer[1]
    return value


def quiet_clients() -> None:
    """pymilvus logs every failed call with a traceback (a wrong token, a bad filter) and grpc's core logs each
    failed TLS handshake; loadgen turns those failures into one line itself."""
    import logging

    import pymilvus  # noqa: F401 - its import configures its own logger, so the level is set after it

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def locustfile(args: argparse.Namespace) -> Path:
    path = Path(args.locustfile) if args.locustfile else REPO_LOCUSTFILES / DEFAULT_LOCUSTFILE
    if not path.is_file():
        raise LoadgenError(f"locustfile {path} not found; pass -f/--locustfile")
    return path.resolve()


terminate_on_sigterm = interrupt.terminate_on_sigterm


@contextlib.contextmanager
def milvus(args: argparse.Namespace) -> Iterator[tuple[str, dict[str, bool]]]:
    """The Milvus to use: ``--host``, or an embedded one started for this command, stopped after and removed unless
    something failed, ``--keep-data`` was given, or the caller set ``keep["logs"]``."""
    keep = {"logs": False}
    if args.host:
        yield args.host, keep
        return
    data_dir = Path(tempfile.mkdtemp(prefix="loadgen-milvus-"))
    ours = [getattr(args, name, None) for name in ("web_port", "prometheus_port")]  # bound once the server runs
    server = EmbeddedMilvus(
        data_dir,
        engine=args.engine,
        startup_timeout=args.startup_timeout,
        die_with_parent=True,
        avoid_ports=[port for port in ours if isinstance(port, int) and port > 0],
        # --otel: Milvus's own spans to the same OTLP endpoint as loadgen's
        config=tracing.milvus_trace_config() if getattr(args, "otel", False) and args.engine == "milvus" else None,
    )
    print(f"loadgen: starting embedded Milvus ({args.engine}); logs: {data_dir / 'logs'}", file=sys.stderr)
    ok = False
    try:
        info = server.start()
        if hasattr(args, "milvus_metrics_url") and not args.milvus_metrics_url:  # scrape our own server
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
    """What the options alone can tell is wrong, before any server is started or reached (a malformed --host, a
    path that cannot be read or written among them)."""
    from loadgen.clients import check_task_names
    from loadgen.workload.embeddings import check_backend

    settings = Settings.from_options(args, args.host or "http://127.0.0.1:19530")
    check_task_names(settings.weights, settings.stream_rates)
    check_backend(settings)
    preflight.path_options(args, settings)
    return settings


def check_server(settings: Settings, locustfile: Path | None) -> str:
    """What the server says before the load: the collection check, then whether it serves every operation the
    locustfile's users will call (an old server: one line, before Locust starts). Returns its version."""
    from loadgen.milvus import collection

    quiet_clients()
    version = collection.check(settings)
    if locustfile is not None:
        preflight.server_capabilities(locustfile, settings, version)
    return version


def processes_args(processes: int) -> list[str]:
    """``--processes N`` on a master port of our own: Locust's default 5557 may be taken (another run, a master)."""
    from loadgen.milvus.server import free_ports

    (port,) = free_ports(1)
    return ["--processes", str(processes), "--master-bind-port", str(port), "--master-port", str(port)]
