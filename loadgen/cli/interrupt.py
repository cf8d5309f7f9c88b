"""Ctrl-C and SIGTERM in the ``loadgen`` process: one clean stop of the Locust child, a second signal forces it.

Locust runs in a session of its own (so a Ctrl-C in the terminal reaches loadgen only, and Locust and its
``--processes`` workers get exactly one signal, from loadgen) and is stopped as a group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any


def terminate_on_sigterm() -> None:
    """SIGTERM becomes KeyboardInterrupt: every command cleans up the same way for both."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # Locust and any worker it forked


@contextlib.contextmanager
def forcing(proc: subprocess.Popen[Any]) -> Iterator[None]:
    """While Locust stops cleanly: a second Ctrl-C or SIGTERM kills it (and its workers) at once."""

    def force(_signum: int, _frame: Any) -> None:
        print("loadgen: stopping now (second signal)", file=sys.stderr)
        kill_group(proc)

    previous = {sig: signal.signal(sig, force) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_child(proc: subprocess.Popen[Any], sig: int, grace: float, before: Callable[[], None] | None = None) -> int:
    """After a first Ctrl-C: ``before()`` (e.g. the web UI's stop), then ``sig`` to Locust, which stops its users
    and writes its results; a process still there after ``grace`` seconds (a bug, or a hung server) is killed."""
    with forcing(proc):
        if before is not None:
            before()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            print(f"loadgen: Locust did not stop within {grace:g} s; killed", file=sys.stderr)
            kill_group(proc)
            return proc.wait()
