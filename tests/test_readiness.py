"""The wait before the load (milvus/readiness.py), against a scripted client: the order of what it waits for, and
that only loadgen's own collection is ever released. The real server's behaviour: tests/test_index_and_truth.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import readiness

SEALED, FLUSHED, GROWING = 3, 4, 2


class ScriptedClient:
    """Milvus as measured on 2.3.5: the index is built after ``build_polls`` looks; the flushed segment is loaded
    (handed over) after ``handover_polls`` more, or at once by a release and load."""

    def __init__(self, build_polls: int, handover_polls: int) -> None:
        self.build_polls, self.handover_polls = build_polls, handover_polls
        self.calls: list[str] = []

    def flush(self, name: str, **_: Any) -> None:
        self.calls.append("flush")

    def list_indexes(self, name: str, **_: Any) -> list[str]:
        return ["vector"]

    def describe_index(self, name: str, index: str, **_: Any) -> dict[str, Any]:
        self.calls.append("describe_index")
        self.build_polls -= 1
        done = self.build_polls < 0
        return {"index_type": "HNSW", "total_rows": 20000, "indexed_rows": 20000 if done else 0,
                "pending_index_rows": 0 if done else 20000, "state": "Finished"}  # fmt: skip

    def list_persistent_segments(self, name: str, **_: Any) -> list[Any]:
        return [SimpleNamespace(segment_id=7, num_rows=20000, state=FLUSHED)]

    def list_loaded_segments(self, name: str, **_: Any) -> list[Any]:
        self.calls.append("list_loaded_segments")
        self.handover_polls -= 1
        if self.handover_polls < 0:
            return [SimpleNamespace(segment_id=7, num_rows=20000, state=SEALED)]
        return [SimpleNamespace(segment_id=7, num_rows=20000, state=GROWING)]  # served unindexed

    def release_collection(self, name: str, **_: Any) -> None:
        self.calls.append("release")
        self.handover_polls = 0

    def load_collection(self, name: str, **_: Any) -> None:
        self.calls.append("load")


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "POLL_SECONDS", 0.0)


S = Settings(uri="http://127.0.0.1:19530")


def test_loadgens_collection_waits_for_the_index_then_loads_the_indexed_segments() -> None:
    c = ScriptedClient(build_polls=3, handover_polls=100)
    seen = readiness.wait_until_indexed(c, S, "lg", "vector", owned=True)  # type: ignore[arg-type]
    assert c.calls[0] == "flush" and c.calls.count("describe_index") == 4
    assert c.calls.index("release") > c.calls.index("describe_index") + 3  # only once the index covers every row
    assert seen == {"index": "HNSW", "rows": 20000, "reloaded": True, "seconds": seen["seconds"]}


def test_a_users_collection_is_never_flushed_or_released_it_waits_for_the_hand_over() -> None:
    c = ScriptedClient(build_polls=1, handover_polls=5)
    seen = readiness.wait_until_indexed(c, S, "users", "vector", owned=False)  # type: ignore[arg-type]
    assert "flush" not in c.calls and "release" not in c.calls and "load" not in c.calls
    assert c.calls.count("list_loaded_segments") == 6 and seen["reloaded"] is False


def test_late_index_is_an_error_for_ours_and_a_warning_for_a_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "MIN_WAIT_SECONDS", 0.0)
    slow = Settings(uri="http://127.0.0.1:19530", timeout=0.01)
    with pytest.raises(LoadgenError, match="index of 'lg' still lacks 20000 of 20000 rows"):
        readiness.wait_until_indexed(ScriptedClient(10**6, 0), slow, "lg", "vector", owned=True)  # type: ignore[arg-type]
    seen = readiness.wait_until_indexed(ScriptedClient(10**6, 0), slow, "u", "vector", owned=False)  # type: ignore[arg-type]
    assert seen["late"] is True
