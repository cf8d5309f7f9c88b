"""The ``greenlet`` driver: each call in a greenlet on the gevent hub, its row reported there at once.

A sync call waits cooperatively (grpc's gevent integration waits for its completion on the hub's thread pool); an
async call is handed to the asyncio loop (``runtime.bridge``) while the greenlet sleeps. In the closed model Locust's
own task loop runs the tasks (``Driver.task``); in the open model each schedule is a greenlet and each send a
greenlet of its own, all on the user's one client (as an app shares one client among its requests: grpc multiplexes
them; a pool of clients grew connections exactly when the server slowed down, and made it slower).

It drives every class in every model, so ``--driver auto`` falls back to it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol

import loadgen.runtime  # noqa: F401  - the gevent/asyncio policy comes first

# isort: split
import gevent
import gevent.pool
from locust.env import Environment

from loadgen.users.drivers import Closed, Driver
from loadgen.users.pipeline import Caller
from loadgen.users.schedule import Plan, Schedule


class Owner(Protocol):
    """A Locust user, as far as its sends need it: its crashes are reported through its environment."""

    @property
    def environment(self) -> Environment: ...


class Sends:
    """Open-model sends in greenlets: one greenlet per schedule, one per send; ``owner``'s crashes go through
    Locust. Used by the ``greenlet`` driver and by ``VectorStoreUser``."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.in_flight = gevent.pool.Group()
        self.schedules: list[gevent.Greenlet] = []

    def start(self, schedule: Schedule, send: Callable[[float], None]) -> None:
        """``send(intended)`` in a greenlet of its own at each due time of ``schedule``."""

        def run() -> None:
            while True:
                for intended in schedule.due(self.in_flight.__len__):
                    self.in_flight.add(self._spawn(send, intended))
                gevent.sleep(schedule.wait())

        self.schedules.append(self._spawn(run))

    def stop(self, timeout: float) -> None:
        """No more sends; the sends already made get their answer (or their timeout) within ``timeout``."""
        gevent.killall(self.schedules)
        self.schedules = []
        self.in_flight.join(timeout=timeout)
        self.in_flight.kill()

    def _spawn(self, fn: Callable[..., None], *args: float) -> gevent.Greenlet:
        owner = self.owner

        def guarded() -> None:
            try:
                fn(*args)
            except gevent.GreenletExit:
                raise
            except Exception as exc:
                owner.environment.events.user_error.fire(user_instance=owner, exception=exc, tb=sys.exc_info()[2])

        return gevent.spawn(guarded)


class GreenletDriver(Driver):
    name = "greenlet"
    auto_order = 30

    def __init__(self, user: Caller) -> None:
        super().__init__(user)
        self.sends = Sends(user)

    def start(self, plans: list[Plan], closed: Closed | None) -> None:
        s = self.user.settings
        for plan in plans:
            schedule = Schedule(plan, process=s.arrival_process, limit=s.max_in_flight, rng=self.user.rng,
                                deliver=self.deliver)  # fmt: skip
            self.sends.start(schedule, self._sender(plan))

    def _sender(self, plan: Plan) -> Callable[[float], None]:
        """What a send of ``plan`` runs (bound here, once: a closure over the caller's loop variable sent the
        rate's calls as streams)."""
        return lambda intended: self.task(plan.pick(), intended, plan.kind)

    def stop(self, timeout: float) -> None:
        self.sends.stop(timeout)
