"""What a start is refused for, before anything is created: the store user classes a test will run, checked by
``clients.check_classes`` (what ``loadgen.locust.starting`` asks for a headless start and for the web UI's form),
over the real operation tables. No server."""

from __future__ import annotations

import pytest

from loadgen import clients
from loadgen.errors import LoadgenError

clients.register("fake", "loadgen.clients.fake")
SYNC, ASYNC = ("FakeUser", "fake", False), ("AsyncFakeUser", "fake", True)
ALL_LAYERS = [(f"{n}{'Async' if a else ''}", layer, a) for layer, n in (("pymilvus", "P"), ("langchain", "L"),
              ("llamaindex", "I")) for a in (False, True)]  # fmt: skip


def _check(classes: list[tuple[str, str, bool]], weights: dict[str, int], streams: dict[str, float] | None = None,
           open_model: bool = False) -> None:  # fmt: skip
    clients.check_classes(classes, weights, streams or {}, open_model)


def test_weights_that_leave_a_picked_class_nothing_to_do() -> None:
    _check([SYNC, ASYNC], {"search": 1})
    with pytest.raises(LoadgenError) as caught:  # the mistake: pymilvus names, every class picked
        _check(ALL_LAYERS, {"search": 4, "query": 1, "insert": 1, "fanout": 0})
    assert str(caught.value).startswith("LAsync: every task has weight 0 in --weights; give one of its tasks a weight")
    with pytest.raises(LoadgenError, match=r"^AsyncFakeUser: --arrival-rate needs a task other than fanout"):
        _check([ASYNC], {"fanout": 2}, open_model=True)
    _check([ASYNC], {"fanout": 2})  # the closed model: a fan-out is something to do


def test_weights_and_streams_name_only_the_picked_classes_tasks() -> None:
    with pytest.raises(LoadgenError) as caught:
        _check([SYNC], {"search": 1, "fanout": 2})  # a sync class has no fan-out
    assert str(caught.value).startswith("--weights: 'fanout' is no task of FakeUser; their tasks: delete, ")
    _check([SYNC], {"search": 1, "fanout": 0})  # turning off what it does not have is harmless
    _check([SYNC, ASYNC], {"search": 1, "fanout": 2})
    with pytest.raises(LoadgenError, match=r"^--weights: 'similarity_search' is no task of AsyncFakeUser, FakeUser"):
        _check([SYNC, ASYNC], {"search": 1, "similarity_search": 1})  # another layer's
    with pytest.raises(LoadgenError, match=r"^--stream-rates: 'add_texts' is no operation of FakeUser$"):
        _check([SYNC], {}, {"add_texts": 5.0})
    _check([SYNC], {}, {"insert": 5.0})
    _check([], {"similarity_search": 1})  # no store user (a locustfile of your own): --weights is not theirs
