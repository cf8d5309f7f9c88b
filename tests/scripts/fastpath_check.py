"""The fast path against a real Milvus, in a process of its own (loadgen.runtime monkey-patches); prints JSON.

    python tests/scripts/fastpath_check.py URI

Builds a loadgen collection, then: the same queries through MilvusClient.search and through the fast path (sync and
async), and a fast-path user whose requests have the wrong dimension, run through the user's own ``run_op``.
"""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import argparse
import json
import sys
from typing import Any

from locust import events
from locust.env import Environment
from pymilvus import MilvusClient
from pymilvus.grpc_gen import milvus_pb2

from loadgen.clients.fastpath import AsyncFastPymilvusStore, FastPymilvusStore
from loadgen.config.settings import Settings, add_options
from loadgen.locust import hooks
from loadgen.milvus import collection
from loadgen.runtime import bridge
from loadgen.users.fastpath import AsyncFastPymilvusUser, FastPymilvusUser
from loadgen.users.pymilvus import PymilvusUser

QUERIES = 20


def settings(uri: str, *extra: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    base = ["--collection", "lg_fastpath", "--dim", "16", "--rows", "2000", "--index-type", "FLAT", "--top-k", "5"]
    return Settings.from_options(parser.parse_args([*base, *extra]), uri)


def reference_ids(s: Settings, vectors: Any) -> list[list[int]]:
    c = MilvusClient(uri=s.uri, timeout=10)
    try:
        params = {"metric_type": s.metric_type, "params": collection.search_params(s)}
        out = []
        for v in vectors:
            res = c.search(s.collection, data=[v.tolist()], limit=s.top_k, search_params=params,
                           consistency_level=s.consistency_level, timeout=10)  # fmt: skip
            out.append([int(hit["id"]) for hit in res[0]])
        return out
    finally:
        c.close()


def reference_rows(s: Settings, request: bytes) -> int:
    """What MilvusClient.query returns for the same expression and limit as a prebuilt query request."""
    req = milvus_pb2.QueryRequest.FromString(request)
    limit = next((int(kv.value) for kv in req.query_params if kv.key == "limit"), None)
    c = MilvusClient(uri=s.uri, timeout=10)
    try:
        kw = {"limit": limit} if limit is not None else {}
        return len(c.query(s.collection, filter=req.expr, output_fields=list(req.output_fields), **kw))
    finally:
        c.close()


def fast_ids(store: Any, run: Any) -> tuple[list[list[int]], list[int]]:
    ids, counts = [], []
    for i in range(QUERIES):
        counts.append(run(store.call("search", store.req.search[i], i)))
        ids.append(list(store.last_ids))
    return ids, counts


def user_failure(user_cls: type, s: Settings) -> list[dict[str, Any]]:
    """One search through the user's own run_op; what Locust was told."""
    hooks.state.settings = s
    env = Environment(user_classes=[user_cls], events=events, host=s.uri)
    seen: list[dict[str, Any]] = []

    def on_request(**kw: Any) -> None:
        seen.append({"type": kw["request_type"], "name": kw["name"], "error": str(kw["exception"] or "")})

    events.request.add_listener(on_request)
    try:
        user = user_cls(env)
        user.store = user._open_store()
        try:
            user.run_op("search")
        finally:
            user._close_store(user.store)
    finally:
        events.request.remove_listener(on_request)
        hooks.state.settings = None
    return seen


def main() -> None:
    uri = sys.argv[1]
    s = settings(uri)
    collection.prepare(s, progress=False)
    out: dict[str, Any] = {}
    sync = FastPymilvusStore(s)
    try:
        vectors = sync.req.vectors[:QUERIES]
        out["reference"] = reference_ids(s, vectors)
        out["sync"], out["sync_counts"] = fast_ids(sync, lambda n: n)
        out["sync_query"] = [sync.call("query", sync.req.query[0]), reference_rows(s, sync.req.query[0])]
        out["sync_get"] = [sync.call("get", sync.req.get[0]), reference_rows(s, sync.req.get[0])]
    finally:
        sync.close()
    astore = bridge.run(AsyncFastPymilvusStore.open(s), 15)
    try:
        out["async"], out["async_counts"] = fast_ids(astore, lambda coro: bridge.run(coro, 15))
        out["async_query"] = bridge.run(astore.call("query", astore.req.query[0]), 15)
        out["async_get"] = bridge.run(astore.call("get", astore.req.get[0]), 15)
    finally:
        bridge.run(astore.close(), 15)
    # wrong dimension: the collection has 16, these requests carry 8-dim vectors (settings made to disagree)
    wrong = settings(uri, "--dim", "8")
    out["failures"] = {
        cls.__name__: user_failure(cls, wrong) for cls in (FastPymilvusUser, AsyncFastPymilvusUser, PymilvusUser)
    }
    collection.drop_if_owned(s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
