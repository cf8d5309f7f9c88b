"""How a Locust process that runs loadgen's users stops on Ctrl-C (SIGINT) or SIGTERM: users first, then the rest.

Locust fires ``quitting`` *before* it stops its users (``main.shutdown``: quitting listeners, then ``runner.quit()``).
loadgen's cleanup at ``quitting`` stops the asyncio loop and drops the collection, so users still running then
found their loop gone (async calls in flight waited their whole ``--timeout``, new ones failed, the ``on_stop`` close
failed) and their collection dropped under them ("collection not found" failures in the partial results). Under a
loaded machine calls take longer, an async call is more often in flight at that moment, and Ctrl-C took as long as
the stop timeout: a race. So the first ``quitting`` listener to run stops the users.

A SIGINT lands in whichever greenlet is running (a user's, grpc's): that greenlet dies with it, without its
``on_stop``. Instead, the first SIGINT is handed to the main greenlet (Locust's own ``except KeyboardInterrupt`` path:
report, ``quitting``, exit) and repeats are ignored while it shuts down (``loadgen run`` kills the process on a
second Ctrl-C of its own).

Locust's CSV writer (``--csv``) is a greenlet that ``shutdown()`` never stops: it closes the writer's files, then
exits. On SIGTERM the exit is raised in the signal handler's greenlet and reaches the main greenlet through the hub;
anything that yields on the way out (atexit handlers) lets the writer wake and write to a closed file, and its
``ValueError: I/O operation on closed file`` traceback lands in the output of a run that ended well (seen once in a
``--processes 2`` stop test). ``_quiet_csv_writer`` lets that greenlet end quietly once its files are closed.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import gevent
from locust.runners import (
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    MasterRunner,
    WorkerRunner,
)
from locust.stats import StatsCSVFileWriter

from loadgen.locust import partial_report

log = logging.getLogger("loadgen")
STOP_GRACE_S = 5.0  # beyond --stop-timeout: how long quitting waits for the users' last calls and on_stop
_STOPPED = (STATE_INIT, STATE_STOPPED, STATE_MISSING)  # a worker in one of these runs no user


class _Sigint:
    seen = False


def _on_sigint(_signum: int, _frame: Any) -> None:
    if _Sigint.seen:
        log.info("already stopping (the users finish their calls, then Locust writes its results)")
        return
    _Sigint.seen = True
    hub = gevent.get_hub()
    main = hub.parent  # the main greenlet: Locust's main(), or the init listeners preparing the collection
    if gevent.getcurrent() is main:
        raise KeyboardInterrupt
    hub.loop.run_callback(main.throw, KeyboardInterrupt)


def stop_users_first(environment: Any, **_: Any) -> None:
    """A ``quitting`` listener that must run before every other: registered last (quitting fires in reverse)."""
    _Sigint.seen = True  # Locust is shutting down already (run time over, SIGTERM): a Ctrl-C now must not cut it
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):  # a worker stops its users when the master says so
        return
    if runner.state in (STATE_SPAWNING, STATE_RUNNING):  # not "stopping": a run time that ran out is no cut
        partial_report.mark_stopped_early()  # its report.html is rewritten once the users have stopped
    if runner.state not in (STATE_INIT, STATE_STOPPED):
        runner.stop()  # each user ends its current call and runs on_stop; Locust kills them after --stop-timeout
    # A stop begun elsewhere (the run time ran out: Locust's runner.quit() from its timer greenlet) may still be
    # waiting for users to end their calls, and a second stop() returns at once: the results and the cleanup (which
    # drops the collection) must come after the last call, never during it (a search in flight then failed with
    # "context canceled" at the end of a CI run).
    deadline = time.monotonic() + (getattr(environment, "stop_timeout", 0) or 0) + STOP_GRACE_S
    users = getattr(runner, "user_greenlets", None)
    if users is not None and len(users):
        users.join(timeout=max(deadline - time.monotonic(), 0.0))
    if isinstance(runner, MasterRunner):  # the same for the workers' users: they stop when the master's message
        # reaches them (a web UI's /stop, then SIGTERM: the master dropped the collection under their last searches)
        while time.monotonic() < deadline and any(w.state not in _STOPPED for w in runner.clients.values()):
            gevent.sleep(0.1)  # the master's listener greenlet takes the workers' "stopped" meanwhile


def _quit_after_last_reports(runner: MasterRunner, grace: float) -> None:
    """Locust's master ``quit`` (the run time over in a headless run, ``--autoquit``) sends the workers "quit" and
    waits 0.5 s for their final stats report, then stops listening: a worker that takes longer to stop its users
    (calls in flight, ``on_stop``, a busy machine) sends its last report to no one, and the run's figures miss its
    last seconds (seen: a 2-worker Kubernetes Job's results 944 searches where the server counted 1,371). This
    ``quit`` waits, bounded by ``--stop-timeout`` plus a grace, until every worker has said it quit (after its final
    report: Locust's worker sends the report first)."""
    from locust.rpc import Message

    def quit() -> None:
        runner.stop(send_stop_to_client=False)
        for client in runner.clients.all:
            runner.server.send_to_client(Message("quit", None, client.id))
        deadline = time.monotonic() + grace
        while runner.clients.all and time.monotonic() < deadline:
            gevent.sleep(0.1)  # the master's listener takes each worker's final report, then its "quit"
        gevent.sleep(0.2)
        runner.greenlet.kill(block=True)

    runner.quit = quit  # type: ignore[method-assign]


def _quiet_csv_writer() -> None:
    writer = StatsCSVFileWriter.stats_writer
    if getattr(writer, "loadgen_quiet", False):
        return

    def stats_writer(self: StatsCSVFileWriter) -> None:
        try:
            writer(self)
        except ValueError:
            if not self.requests_csv_filehandle.closed:  # only the shutdown race is quiet: a real error still shows
                raise

    stats_writer.loadgen_quiet = True  # type: ignore[attr-defined]
    StatsCSVFileWriter.stats_writer = stats_writer  # type: ignore[method-assign]


def install(environment: Any) -> None:
    """Call from an ``init`` listener (main thread, after any ``--processes`` fork), after the other listeners."""
    signal.signal(signal.SIGINT, _on_sigint)
    # loadgen stops Locust with SIGTERM; until Locust's main installs its own SIGTERM handler (after init), one
    # that arrives while the collection fills takes the same path as a Ctrl-C
    signal.signal(signal.SIGTERM, _on_sigint)
    environment.events.quitting.add_listener(stop_users_first)
    _quiet_csv_writer()  # before Locust's main spawns the writer (after init)
    if isinstance(environment.runner, MasterRunner):
        _quit_after_last_reports(environment.runner, (getattr(environment, "stop_timeout", 0) or 0) + STOP_GRACE_S)
