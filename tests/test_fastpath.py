"""The fast path (issue 17): the same hits as MilvusClient for the same queries, and the server's own message when
a request is bad, reported through Locust like the library users' failures."""

from __future__ import annotations

import pytest
from conftest import run_script

from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus]


def test_fast_path_matches_milvus_client_and_fails_with_the_servers_message(milvus: ServerInfo) -> None:
    out = run_script("fastpath_check.py", milvus.uri, timeout=180)
    reference = out["reference"]
    assert len(reference) == 20 and all(len(ids) == 5 for ids in reference)
    assert out["sync"] == reference  # same ids, same order, query for query
    assert out["async"] == reference
    assert out["sync_counts"] == out["async_counts"] == [5] * 20  # the hit count reported is the ids'
    count, expected = out["sync_query"]
    assert count == expected > 0
    count, expected = out["sync_get"]
    assert count == expected > 0
    assert out["async_query"] > 0 and out["async_get"] > 0

    failures = out["failures"]
    library = failures["PymilvusUser"]
    assert len(library) == 1 and library[0]["error"], library  # the library user failed on the wrong dimension
    for user in ("FastPymilvusUser", "AsyncFastPymilvusUser"):
        seen = failures[user]
        assert [(r["name"], bool(r["error"])) for r in seen] == [("search", True)], seen
        # the server's text, as Locust shows it for the library user (same exception type, code and message)
        assert seen[0]["error"] == library[0]["error"], (seen, library)
    assert failures["AsyncFastPymilvusUser"][0]["type"] == "pymilvus-fast-async"
    assert failures["FastPymilvusUser"][0]["type"] == "pymilvus-fast"
