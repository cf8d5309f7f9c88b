"""The gevent/asyncio policy. Every entry point (locustfiles, users) imports this module first.

What works (see shared/NOTES.md): Locust's own ``patch_all()`` is skipped (``LOCUST_SKIP_MONKEY_PATCH=1``), we patch
everything but threads, make grpc cooperative with ``init_gevent()``, and run one asyncio loop per process in a real
OS thread on the *unpatched* epoll selector. Greenlets hand coroutines to that loop and sleep on a gevent waiter, so
the hub keeps running other users while a coroutine is in flight.

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
import threading  # noqa: E402
from collections.abc import Callable, Coroutine  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from loadgen.errors import CallTimeout  # noqa: E402

T = TypeVar("T")


class _Loop(asyncio.SelectorEventLoop):
    """The asyncio loop, woken through a self-pipe of *unpatched* sockets.

    ``SelectorEventLoop`` makes its self-pipe with ``socket.socketpair()``, which ``patch_all`` turned into gevent
    sockets: every ``call_soon_threadsafe`` from a greenlet (one per async call) then went through gevent's Python
    socket layer (py-spy: ~200 us per call of one user, bench/bench_cost.py). ``_socket`` objects have the few
    methods asyncio uses on it (setblocking, fileno, send, recv, close).
    """

    def _make_self_pipe(self) -> None:
        import _socket

        self._ssock, self._csock = _socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1  # type: ignore[attr-defined]
        self._add_reader(self._ssock.fileno(), self._read_from_self)  # type: ignore[attr-defined]


class AsyncBridge:
    """One asyncio loop per process, in a real thread, started lazily (after any ``--processes`` fork)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
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
        selector_cls = gevent.monkey.get_original("selectors", "EpollSelector")
        loop = _Loop(selector_cls())
        ready = threading.Event()  # threads are unpatched: this is a real OS event

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="loadgen-asyncio", daemon=True)
        thread.start()
        ready.wait(10)
        self._loop, self._pid = loop, os.getpid()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop; the calling greenlet yields until it is done or ``timeout`` passes.

        One wake-up each way and nothing more (no concurrent.futures.Future in between): the hand-off costs
        about as much as a bare cross-thread round trip on this machine (see bench/bench_bridge.py).
        """
        loop = self.loop
        waiter: gevent.event.AsyncResult = gevent.event.AsyncResult()
        hub_loop = gevent.get_hub().loop
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:  # on the asyncio thread
            task = loop.create_task(coro)
            tasks.append(task)
            task.add_done_callback(lambda t: hub_loop.run_callback_threadsafe(waiter.set, t))

        loop.call_soon_threadsafe(start)
        try:
            done: asyncio.Task[T] = waiter.get(timeout=timeout)  # the timer also keeps the hub from LoopExit
        except gevent.Timeout:
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
            raise CallTimeout(f"no answer within {timeout:g} s") from None
        except BaseException:  # the greenlet was killed (Locust stopping its user): the coroutine stops with it
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
            raise
        return done.result()

    def stop(self) -> None:
        if self._loop is not None and self._pid == os.getpid():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None


bridge = AsyncBridge()


def off_hub(fn: Callable[..., T], *args: Any) -> T:
    """Run a call that may block its OS thread (a library's sync constructor: pymilvus waits for a new channel on a
    real ``threading.Condition``, since threads are not patched) on gevent's thread pool: the calling greenlet waits,
    the hub and every other user keep running."""
    return gevent.get_hub().threadpool.apply(fn, args)
