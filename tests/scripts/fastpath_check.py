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

from loadgen.clients.fastpath import ADAPTER, OPERATIONS, _hits
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
    """Pool query i through the search operation: its ids, and the hit count its outcome reports."""
    op, ids, counts = OPERATIONS["search"], [], []
    for i in range(QUERIES):
        inputs = (store.req.search[i], i)
        response = run(op, store, inputs)
        ids.append(_hits(response))
        counts.append(op.outcome(store, inputs, response).length)
    return ids, counts


def rows(name: str, store: Any, request: bytes, run: Any) -> int:
    op = OPERATIONS[name]
    return op.outcome(store, (request, 0), run(op, store, (request, 0))).length


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
        user.on_start()
        try:
            user.run_op("search")
        finally:
            user.on_stop()
    finally:
        events.request.remove_listener(on_request)
        hooks.state.settings = None
    return seen


def main() -> None:
    uri = sys.argv[1]
    s = settings(uri)
    collection.prepare(s, progress=False)
    out: dict[str, Any] = {}
    call = lambda op, st, inputs: op.call(st, *inputs)  # noqa: E731
    acall = lambda op, st, inputs: bridge.run(op.async_call(st, *inputs), 15)  # noqa: E731
    sync = ADAPTER.open(s, False)
    try:
        out["reference"] = reference_ids(s, sync.req.vectors[:QUERIES])
        out["sync"], out["sync_counts"] = fast_ids(sync, call)
        out["sync_query"] = [rows("query", sync, sync.req.query[0], call), reference_rows(s, sync.req.query[0])]
        out["sync_get"] = [rows("get", sync, sync.req.get[0], call), reference_rows(s, sync.req.get[0])]
    finally:
        ADAPTER.close(sync)
    astore = ADAPTER.open(s, True)
    bridge.run(ADAPTER.attach(astore), 15)
    try:
        out["async"], out["async_counts"] = fast_ids(astore, acall)
        out["async_query"] = rows("query", astore, astore.req.query[0], acall)
        out["async_get"] = rows("get", astore, astore.req.get[0], acall)
    finally:
        bridge.run(ADAPTER.aclose(astore), 15)
    # wrong dimension: the collection has 16, these requests carry 8-dim vectors (settings made to disagree)
    wrong = settings(uri, "--dim", "8")
    out["failures"] = {
        cls.__name__: user_failure(cls, wrong) for cls in (FastPymilvusUser, AsyncFastPymilvusUser, PymilvusUser)
    }
    collection.drop_if_owned(s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
