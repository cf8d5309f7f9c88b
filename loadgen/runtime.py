"""The gevent/asyncio policy. Every entry point (locustfiles, users) imports this module first.

What works (tests/test_bridge.py checks it): Locust's own ``patch_all()`` is skipped (``LOCUST_SKIP_MONKEY_PATCH=1``),
we patch everything but threads, make grpc cooperative with ``init_gevent()``, and run one asyncio loop per process in
a real OS thread on the *unpatched* epoll selector. Greenlets hand coroutines to that loop and sleep on a gevent
waiter, so the hub keeps running other users while a coroutine is in flight.

A plain ``locust -f ...`` has already run ``patch_all()`` (threads included) before our locustfile is imported; grpc.aio
hangs under that. We then re-execute the same command once with ``LOCUST_SKIP_MONKEY_PATCH=1`` set, before Locust has
started anything.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")  # effective when we are imported before locust

import gevent.monkey


def _reexec_unless_threads_unpatched() -> None:
    if not gevent.monkey.is_module_patched("threading"):
        return
    main = sys.modules.get("__main__")
    under_locust_cli = os.path.basename(sys.argv[0]) == "locust" or getattr(
        getattr(main, "__spec__", None), "name", ""
    ).startswith("locust")
    if under_locust_cli and not os.environ.get("LOADGEN_REEXECED"):
        os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
        os.environ["LOADGEN_REEXECED"] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "locust", *sys.argv[1:]])
    raise RuntimeError(
        "gevent patched threads before loadgen was imported; set LOCUST_SKIP_MONKEY_PATCH=1 "
        "or import loadgen.runtime first"
    )


_reexec_unless_threads_unpatched()
if not gevent.monkey.is_module_patched("socket"):
    import warnings

    # locust imports urllib3 (and so ssl) before any locustfile; patching ssl late is what Locust does too
    warnings.filterwarnings("ignore", category=gevent.monkey.MonkeyPatchWarning)
    gevent.monkey.patch_all(thread=False)

from grpc.experimental import gevent as _grpc_gevent  # noqa: E402

_grpc_gevent.init_gevent()  # before any channel exists, or sync grpc calls block the hub

import asyncio  # noqa: E402
import concurrent.futures  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Coroutine  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.threadpool  # noqa: E402

from loadgen.errors import CallTimeout  # noqa: E402

T = TypeVar("T")


class _Loop(asyncio.SelectorEventLoop):
    """The asyncio loop, woken through a self-pipe of *unpatched* sockets.

    ``SelectorEventLoop`` makes its self-pipe with ``socket.socketpair()``, which ``patch_all`` turned into gevent
    sockets: every ``call_soon_threadsafe`` from a greenlet (one per async call) then went through gevent's Python
    socket layer, at a cost per call bench/COST.md section 2 measures. ``_socket`` objects have the few methods
    asyncio uses on it (setblocking, fileno, send, recv, close).
    """

    def _make_self_pipe(self) -> None:
        import _socket

        self._ssock, self._csock = _socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1  # type: ignore[attr-defined]
        self._add_reader(self._ssock.fileno(), self._read_from_self)  # type: ignore[attr-defined]


def _grpc_aio_on_plain_sockets() -> None:
    """grpc.aio's process-wide completion queue, made now with *unpatched* sockets, and kept for the process.

    grpc.aio makes it at its first channel: a poller thread that signals the asyncio loop through a
    ``socket.socketpair()``, which ``patch_all`` had turned into gevent sockets. Read from the loop's thread, that
    made a gevent hub in the asyncio thread (a second event loop there), put every completion through gevent's
    socket layer, and a read that found nothing (grpc's handler reads without checking; a plain socket raises
    EAGAIN) would have waited in that hub, i.e. frozen the asyncio loop until the next completion. The extra
    reference taken here keeps grpc from tearing the queue down (and making a patched one) when a test's last
    channel closes. A process forked later would inherit the count without the poller thread, which is why this
    runs only as the bridge starts: lazily, after any ``--processes`` fork (as grpc.aio's own first channel would)."""
    import socket

    from grpc._cython import cygrpc

    patched = socket.socketpair
    socket.socketpair = gevent.monkey.get_original("socket", "socketpair")
    try:
        cygrpc.init_grpc_aio()
    finally:
        socket.socketpair = patched


class _OSThreadPool(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor (``run_in_executor(None, ...)``, ``asyncio.to_thread``). The stock one hands work
    to its threads through ``queue.SimpleQueue``, which gevent patched: a real thread waiting on it has no hub and
    dies with LoopExit. This one uses the original queue."""

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="loadgen-executor")
        self._work_queue = gevent.monkey.get_original("queue", "SimpleQueue")()


class AsyncBridge:
    """One asyncio loop per process, in a real thread, started lazily (after any ``--processes`` fork)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._stopped_pid = 0  # the process whose loop was stopped for good (at quit)
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._stopped_pid == os.getpid():
            # a call after quit() must not start a second loop: clients built on the first one cannot be awaited
            # on it (each such call used to fail, or wait its whole timeout, while Locust was shutting down)
            raise BridgeStopped("the asyncio loop is stopped: the test is shutting down")
        if self._loop is None or self._pid != os.getpid():
            with self._lock:
                if self._loop is None or self._pid != os.getpid():
                    self._start()
        assert self._loop is not None
        return self._loop

    @property
    def started_loop(self) -> asyncio.AbstractEventLoop | None:
        """This process's loop if something already started it (never starts one: a probe must not cost a thread)."""
        return self._loop if self._pid == os.getpid() else None

    def _start(self) -> None:
        _grpc_aio_on_plain_sockets()
        selector_cls = gevent.monkey.get_original("selectors", "EpollSelector")
        loop = _Loop(selector_cls())
        loop.set_default_executor(_OSThreadPool())  # run_in_executor from user code (LangChain's sync fallbacks)

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_forever()

        # no wait for the thread: call_soon_threadsafe queues work on a loop that is not running yet, and a real
        # (unpatched) wait here would block the gevent hub, so every user, for as long as the thread takes to start
        threading.Thread(target=run, name="loadgen-asyncio", daemon=True).start()
        self._loop, self._pid = loop, os.getpid()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, *, answer_when_killed: bool = False) -> T:
        """Run ``coro`` on the loop; the calling greenlet yields until it is done or ``timeout`` passes.

        One wake-up each way and nothing more (no concurrent.futures.Future in between): the hand-off costs
        about as much as a bare cross-thread round trip on this machine (see bench/bench_bridge.py). If the wait
        times out, or the greenlet is killed (a user stopped by Locust), the coroutine is cancelled on the loop too;
        with ``answer_when_killed``, a killed greenlet first waits for the answer (within ``timeout``) and raises
        ``Answered`` with it, so that a store call made is a row even when its user is stopped mid-call.
        """
        try:
            loop = self.loop
        except BridgeStopped:
            coro.close()  # never awaited: no "coroutine was never awaited" warning
            raise
        waiter: gevent.event.AsyncResult = gevent.event.AsyncResult()
        hub_loop = gevent.get_hub().loop
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:  # on the asyncio thread
            task = loop.create_task(coro)
            tasks.append(task)
            task.add_done_callback(lambda t: hub_loop.run_callback_threadsafe(waiter.set, t))

        loop.call_soon_threadsafe(start)
        deadline = time.monotonic() + timeout
        try:
            done: asyncio.Task[T] = waiter.get(timeout=timeout)  # the timer also keeps the hub from LoopExit
        except gevent.Timeout:
            self._cancel(loop, tasks)
            raise CallTimeout(f"no answer within {timeout:g} s") from None
        except gevent.GreenletExit as killed:
            if not answer_when_killed:
                self._cancel(loop, tasks)
                raise
            # Locust's stop kills a user it finds waiting, and with a wait of 0 the kill can land after that user
            # began its next call. Cancelling the call's RPC there made Milvus 2.3 fail other users' concurrent
            # calls on the same channel with "context canceled" at a run's end: the call answers instead.
            try:
                done = waiter.get(timeout=max(deadline - time.monotonic(), 0.0))
            except gevent.Timeout:
                self._cancel(loop, tasks)
                raise killed from None
            if done.cancelled() or done.exception() is not None:
                raise killed from None
            raise Answered(done.result()) from None
        except BaseException:  # KeyboardInterrupt: the coroutine must not run on
            self._cancel(loop, tasks)
            raise
        if done.cancelled():  # stop() cancelled it: the process is quitting
            raise BridgeStopped("the asyncio loop stopped before the call finished")
        return done.result()

    @staticmethod
    def _cancel(loop: asyncio.AbstractEventLoop, tasks: list[asyncio.Task[Any]]) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])

    def stop(self) -> None:
        """Stop the loop for good (Locust is quitting, its users are stopped): tasks still pending are cancelled,
        so a greenlet still waiting for one wakes up now instead of at its timeout."""
        loop, self._loop = self._loop, None
        if loop is not None and self._pid == os.getpid():
            self._stopped_pid = os.getpid()
            draining: list[asyncio.Task[None]] = []  # held, so the task is not collected mid-way

            def cancel_all_then_stop() -> None:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:  # let the cancellations run (done callbacks wake the greenlets), then stop
                    draining.append(loop.create_task(_drain(pending, loop)))
                else:
                    loop.stop()

            loop.call_soon_threadsafe(cancel_all_then_stop)


async def _drain(tasks: list[asyncio.Task[Any]], loop: asyncio.AbstractEventLoop) -> None:
    await asyncio.wait(tasks, timeout=2.0)  # a coroutine that swallows its cancellation gets 2 s, no more
    loop.stop()


class Answered(gevent.GreenletExit):
    """The greenlet was killed while its call was out, and the call answered meanwhile: ``result`` is its answer,
    to be reported before the greenlet ends (``AsyncBridge.run(..., answer_when_killed=True)``)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class BridgeStopped(CallTimeout):
    """A call handed to the bridge after (or while) it was stopped at quit: fails at once, counted as a timeout."""


bridge = AsyncBridge()


@functools.lru_cache(maxsize=1)
def _setup_pool(pid: int) -> gevent.threadpool.ThreadPool:
    """This process's pool for setup calls (by pid: a forked child, ``--processes``, has none of its parent's
    threads)."""
    return gevent.threadpool.ThreadPool(10)  # as many as the hub's: a frozen server holds each for --timeout


def off_hub(fn: Callable[..., T], *args: Any) -> T:
    """Run a call that may block its OS thread (a library's sync constructor: pymilvus waits for a new channel on a
    real ``threading.Condition``, since threads are not patched) on a thread pool of its own: the calling greenlet
    waits, the hub and every other user keep running.

    Not on the hub's thread pool: grpc's gevent integration waits for every sync call's completion there, and
    hundreds of users starting at once queued their constructors ahead of those waits, so the calls of the users
    already running took seconds (bench/COST.md section 4, run D)."""
    return _setup_pool(os.getpid()).apply(fn, args)


def freeze_heap() -> None:
    """After a user has connected: what the process holds now (users, clients, channels) leaves the garbage
    collector's sight (``gc.freeze``), so its full collections walk only what calls make. With many users, each
    full collection of what they hold stalled every user of the process for a large part of a second, in their p99
    (bench/COST.md section 4, run D). O(1): it moves lists, it walks nothing."""
    gc.freeze()


def thaw_heap() -> None:
    """At test stop: everything frozen is the collector's again (a stopped user's cycles are then freed)."""
    gc.unfreeze()
