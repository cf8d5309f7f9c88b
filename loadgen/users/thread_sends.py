"""A sync user's closed-model task loop in an OS thread of its own: no thread hand-off per call.

In a greenlet, every sync grpc call crosses threads twice: grpc's gevent integration waits for the call's completion
on the hub's thread pool (``threadpool.apply``), and the pool wakes the hub with the answer. An app's sync code calls
``MilvusClient`` from an OS thread, where grpc waits in the calling thread itself; so does a bare pymilvus loop, and
one sync user in a greenlet reached 0.83-0.94x its QPS at one call in flight (bench/COST.md, runs K, M, N).

Here the user's task loop (a task by weight, its call, the class's ``wait_time``) runs in a real thread (threads are
not patched, ``loadgen.runtime``). gevent's pool runs ``apply`` at once in a thread that is not its hub's, so grpc
waits right there. Only what must happen on the hub goes back to it, as for the async users' loop-side calls: each
call's request row, posted to the process's ``Outbox`` (``loadgen.users.loop_sends``), one wake-up of the hub per
batch. A stop lets the call in flight answer (within the user's timeout) and reports it, then the thread ends.

Only for users whose every operation is a single read (``loop_sends.eligible``) in the closed model, without
``--iterations``: the open model's sends overlap (greenlets on one client), and writes keep bookkeeping on the hub.
And only up to ``MAX_THREADS`` users, in the whole test and in the process: a thread per user pays in the
interpreter lock as users grow (100 sync users in threads: 1,165 us of CPU per search against 1,030 in greenlets,
bench/COST.md section 9), so a test of more users keeps every sync user in its greenlet, and one run takes one path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.event
from gevent._hub_local import get_hub_if_exists

from loadgen.clients.base import Skip
from loadgen.stats.timing import measure
from loadgen.users.loop_sends import outbox

StoreUser = Any  # loadgen.users.base.StoreUser, which imports this module

MAX_THREADS = 16  # sync users that run in threads of their own, in the whole test and in one process
_claimed = [0]  # this process's users holding a thread (changed on the hub only)


def claim(total_users: int) -> bool:
    """On the hub, as a user is made: whether it runs in a thread of its own (``total_users``: the test's users, 0
    if not known). A claim is the user's until ``release``."""
    if total_users > MAX_THREADS or _claimed[0] >= MAX_THREADS:
        return False
    _claimed[0] += 1
    return True


def release() -> None:
    _claimed[0] -= 1


class ThreadSends:
    """One sync user's closed-model task loop, in a thread of its own."""

    def __init__(self, user: StoreUser) -> None:
        self.user = user
        self.outbox = outbox(os.getpid())  # made on the hub's thread (here: the user's first task)
        self._halt = threading.Event()  # a real event: the thread waits on it between two tasks
        self._ended = gevent.event.Event()  # on the hub: the thread is done
        self._abandoned = False  # the stop gave up waiting: a late answer is not reported
        self.started = False

    def start(self, plan: list[str], wait: Callable[[], float]) -> None:
        """``plan``: the task names by weight; ``wait``: the class's wait between two tasks."""
        self.started = True
        hub_loop = gevent.get_hub().loop

        def run() -> None:
            try:
                self._loop(plan, wait)
            except BaseException as exc:  # reported as the user's error, never lost with the thread
                self._error(exc)
            finally:
                hub = get_hub_if_exists()  # gevent's pool made one for this thread (its check of who calls it)
                if hub is not None:
                    hub.destroy(destroy_loop=True)
                hub_loop.run_callback_threadsafe(self._ended.set)

        name = f"loadgen-user-{id(self.user):x}"
        threading.Thread(target=run, name=name, daemon=True).start()

    def stop(self, timeout: float) -> None:
        """On the hub (the user's stop): no more tasks; a call in flight gets its answer (or its timeout) within
        ``timeout`` and is reported, else it is left unreported, as the greenlet path kills its call. Every row of
        the calls that answered is reported before this returns."""
        self._halt.set()
        if self.started and not self._ended.wait(timeout):
            self._abandoned = True
        self.outbox.flush()

    def _loop(self, plan: list[str], wait: Callable[[], float]) -> None:
        rng = self.user._rng
        while not self._halt.is_set():
            try:
                self._call(rng.choice(plan))
            except Exception as exc:  # like Locust: the user's error is reported, the user goes on
                self._error(exc)
            pause = wait()
            if pause > 0 and self._halt.wait(pause):
                break

    def _call(self, name: str) -> None:
        """One task: inputs, the timed call, its outcome, here; the row is the hub's."""
        user = self.user
        op, store = user.ops[name], user.store
        try:
            inputs = op.inputs(store)
        except Skip:
            self.outbox.post(user, user.skipped_send, op, "")
            return
        sample = measure(op.call, store, *inputs)
        if not self._abandoned:
            self.outbox.post_settled(user, store, op, inputs, sample, intended=None)

    def _error(self, exc: BaseException) -> None:
        if not self._abandoned:
            self.outbox.post_error(self.user, exc)
