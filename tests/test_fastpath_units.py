"""The fast path's own logic, without a server: one pool of prebuilt requests per process, however many users
open at once (sync users open in threads of their own, ``runtime.off_hub``)."""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import pytest

from loadgen.clients import fastpath
from loadgen.config.settings import Settings, add_options


def _settings() -> Settings:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    return Settings.from_options(parser.parse_args([]), "http://127.0.0.1:1")


def test_users_opening_at_once_in_threads_build_one_pool_and_share_it(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []

    class SlowBuild:  # a build that takes a while and lets other threads run meanwhile, as the real one is preempted
        def __init__(self, settings: Settings, client: Any, schema: dict[str, Any]) -> None:
            built.append(self)
            time.sleep(0.05)

    monkeypatch.setattr(fastpath, "Requests", SlowBuild)
    monkeypatch.setattr(fastpath, "_pools", [])
    s, got, start = _settings(), [], threading.Barrier(10)

    def open_store() -> None:
        start.wait()
        got.append(fastpath.Store(s).pool({}))

    threads = [threading.Thread(target=open_store) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 10
    assert len(built) == 1  # without the build lock: ten pools, one per thread
    assert all(pool is built[0] for pool in got)


def test_new_settings_replace_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "Requests", lambda settings, client, schema: object())
    monkeypatch.setattr(fastpath, "_pools", [])
    a = _settings()
    first = fastpath.Store(a).pool({})
    assert fastpath.Store(a).pool({}) is first  # equal settings: the same pool
    b = Settings(**{**a.__dict__, "top_k": a.top_k + 1})
    second = fastpath.Store(b).pool({})
    assert second is not first and fastpath._cached(a) is None  # one test's pool at a time
