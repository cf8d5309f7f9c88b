"""``--driver``: which driver each fake-store class gets under ``auto`` in the closed and open models, with writes and
with ``--iterations``, and the one line a driver a class cannot use (or an unknown one) is refused with. Prints one
JSON line."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import argparse
import json
from types import SimpleNamespace
from typing import Any

from loadgen.config.settings import Settings, add_options
from loadgen.errors import LoadgenError
from loadgen.users import drivers
from loadgen.users.fake import AsyncFakeUser, FakeUser


def settings(*argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    return Settings.from_options(parser.parse_args(list(argv)), "http://127.0.0.1:9")


def env(iterations: int = 0) -> Any:
    return SimpleNamespace(parsed_options=SimpleNamespace(iterations=iterations))


def refusal(cls: type[FakeUser], *argv: str) -> str:
    s = settings(*argv)
    try:
        drivers.choose(s.driver, cls.use(s, env()), cls.__name__)
    except LoadgenError as exc:
        return str(exc)
    return "accepted"


def auto(*argv: str, iterations: int = 0) -> dict[str, str]:
    s = settings(*argv)
    return {c.__name__: drivers.choose(s.driver, c.use(s, env(iterations)), c.__name__).name
            for c in (FakeUser, AsyncFakeUser)}  # fmt: skip


reads = ["--weights", "search=1,fanout=0"]
print(json.dumps({
    "thread-async": refusal(AsyncFakeUser, *reads, "--driver", "thread"),
    "loop-sync": refusal(FakeUser, *reads, "--driver", "loop"),
    "thread-writes": refusal(FakeUser, "--weights", "search=1,insert=1", "--driver", "thread"),
    "loop-open-writes": refusal(AsyncFakeUser, "--weights", "search=1,insert=1", "--arrival-rate", "10",
                                "--driver", "loop"),
    "unknown": refusal(FakeUser, *reads, "--driver", "fibre"),
    "auto": auto(*reads),
    "auto-open": auto(*reads, "--arrival-rate", "10"),
    "auto-writes": auto("--weights", "search=1,insert=1"),
    "auto-iterations": auto(*reads, iterations=5),
}))  # fmt: skip
