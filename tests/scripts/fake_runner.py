"""What the local-runner checks share: fake-store users in a Locust local runner with loadgen's listeners, as a run
has them, started and waited for until every user has connected. Import ``loadgen.runtime`` before this module."""

from __future__ import annotations

import argparse
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment

import loadgen.locust.hooks  # noqa: F401  - our listeners, as in a locustfile
from loadgen.config.settings import add_options


def start(user_classes: list[Any], argv: list[str], users: int) -> tuple[Any, list[Any]]:
    """A local runner running ``users`` users of ``user_classes`` with options ``argv``; returns it and its users
    once each has its store (or after 30 s, whatever it has)."""
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    ns = parser.parse_args(argv)
    ns.headless, ns.autostart, ns.users = True, False, users
    env = Environment(user_classes=user_classes, events=events, host="http://127.0.0.1:9", parsed_options=ns)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)
    runner.start(users, spawn_rate=100, wait=False)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        running = [g.args[0] for g in runner.user_greenlets]
        if len(running) == users and all(u.store is not None for u in running):
            break
        gevent.sleep(0.1)
    return runner, [g.args[0] for g in runner.user_greenlets]
