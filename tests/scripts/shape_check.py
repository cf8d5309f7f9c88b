"""The request shape against a real Milvus, in a process of its own (loadgen.runtime monkey-patches); prints JSON.

    python tests/scripts/shape_check.py URI

Builds a small FLAT collection of a synthetic dataset, then for each --output-fields profile makes searches of
--nq 4 query vectors through the pymilvus layer and the fast path, sync and async, each through its operation's own
inputs, call and outcome (what a user's pipeline does), and prints what each outcome reported: the query vectors the
call counts, one recall per query vector, the answer's bytes; and the size of the same answer measured apart.
"""

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import argparse
import json
import sys
from typing import Any

from pymilvus import MilvusClient
from pymilvus.client.prepare import Prepare

from loadgen.clients import fastpath, pymilvus
from loadgen.config.settings import OUTPUT_PROFILES, Settings, add_options
from loadgen.milvus import collection
from loadgen.runtime import bridge

CALLS = 3


def settings(uri: str, *extra: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_options(parser, locust=False)
    base = ["--collection", "lg_shape", "--dim", "16", "--rows", "300", "--index-type", "FLAT", "--top-k", "5",
            "--dataset", "synthetic:uniform", "--nq", "4"]  # fmt: skip
    return Settings.from_options(parser.parse_args([*base, *extra]), uri)


def searches(adapter: Any, s: Settings, use_async: bool) -> list[dict[str, Any]]:
    op = adapter.operations["search"]
    store = adapter.open(s, use_async)
    if use_async:
        bridge.run(adapter.attach(store), 15)
    out = []
    try:
        for _ in range(CALLS):
            inputs = op.inputs(store)
            value = bridge.run(op.async_call(store, *inputs), 15) if use_async else op.call(store, *inputs)
            outcome = op.outcome(store, inputs, value)
            recall = outcome.recall if isinstance(outcome.recall, list) else [outcome.recall]
            out.append({"nq": op.queries(store, inputs), "hits": outcome.length, "recall": recall,
                        "bytes": outcome.response_bytes})  # fmt: skip
    finally:
        if use_async:
            bridge.run(adapter.aclose(store), 15)
        else:
            adapter.close(store)
    return out


def apart(s: Settings, fields: list[str]) -> int:
    """The size of one ids-only (or ``fields``) answer of 4 query vectors, from pymilvus's stub called directly."""
    c = MilvusClient(uri=s.uri, timeout=10)
    try:
        vectors = [[0.1 * (i + j) for j in range(s.dim)] for i in range(s.nq)]
        params = {"metric_type": s.metric_type, "params": collection.search_params(s)}
        req = Prepare.search_requests_with_expr(
            collection_name=s.collection, anns_field="", param=params, limit=s.top_k, data=vectors, expr="",
            output_fields=fields or None, consistency_level="Strong", expr_params={},
        )  # fmt: skip
        return int(c._get_connection()._stub.Search(req, timeout=10).ByteSize())
    finally:
        c.close()


def main() -> None:
    uri = sys.argv[1]
    base = settings(uri)
    collection.prepare(base, progress=False)
    out: dict[str, Any] = {}
    try:
        for profile in OUTPUT_PROFILES:
            s = settings(uri, "--output-fields", profile)
            out[profile] = {
                f"{name}{'-async' if use_async else ''}": searches(adapter.ADAPTER, s, use_async)
                for name, adapter in (("pymilvus", pymilvus), ("fast", fastpath))
                for use_async in (False, True)
            }
        out["apart"] = {"ids": apart(base, []), "vectors": apart(base, ["vector"])}
    finally:
        collection.drop_if_owned(base)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
