"""VectorDBBench's own Milvus client and concurrent search runner, driven from its own venv (``bench_peer.py``).

    PEER_PYTHON bench/vdbb_child.py prepare URI DIR        # its collection, filled with DIR/base.npy, indexed
    PEER_PYTHON bench/vdbb_child.py search URI DIR CONC SECONDS

Nothing here is VectorDBBench's code: it calls ``vectordb_bench.backend.clients.milvus.milvus.Milvus`` and
``vectordb_bench.backend.runner.mp_runner.MultiProcessingSearchRunner`` as its own benchmark does, with the same
index (HNSW, M 16, efConstruction 200, ef 128, COSINE) and k=100 as loadgen's side. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from vectordb_bench.backend.clients import MetricType
from vectordb_bench.backend.clients.milvus.config import HNSWConfig
from vectordb_bench.backend.clients.milvus.milvus import Milvus
from vectordb_bench.backend.runner.mp_runner import MultiProcessingSearchRunner

COLLECTION = "vdbb_peer"
K = 100


def _db(uri: str, *, drop_old: bool) -> Milvus:
    case = HNSWConfig(M=16, efConstruction=200, ef=128, metric_type=MetricType.COSINE)
    config = {"uri": uri, "user": None, "password": None, "num_shards": 1, "replica_number": 1,
              "collection_name": COLLECTION}  # fmt: skip
    return Milvus(64, config, case, collection_name=COLLECTION, drop_old=drop_old)


def prepare(uri: str, folder: str) -> dict[str, object]:
    base = np.load(f"{folder}/base.npy")
    db = _db(uri, drop_old=True)
    with db.init():
        for start in range(0, len(base), 5000):
            chunk = base[start : start + 5000]
            _, error = db.insert_embeddings(chunk.tolist(), list(range(start, start + len(chunk))))
            if error is not None:
                raise error
        # its optimize() waits on Milvus 2.6 segment states (sorted segments, force merge), which 2.3.5 never
        # reports: its flush, index wait and reload instead, through its own client
        db.client.flush(COLLECTION)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            info = db.client.describe_index(COLLECTION, db.client.list_indexes(COLLECTION)[0])
            if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= len(base):
                break
            time.sleep(1)
        db.client.release_collection(COLLECTION)
        db.client.load_collection(COLLECTION)
    return {"rows": len(base)}


def search(uri: str, folder: str, conc: int, seconds: int) -> dict[str, object]:
    queries = np.load(f"{folder}/queries.npy").tolist()
    db = _db(uri, drop_old=False)
    db._primary_field = "id"  # Milvus 2.3.5 names a hit's key "id" (2.6 names it after the field): the ids it reads
    runner = MultiProcessingSearchRunner(db, queries, k=K, concurrencies=[conc], duration=seconds)
    _, _, qps, p99, _, avg, p50 = runner.run()
    return {"qps": qps[0], "p99_s": p99[0], "p50_s": p50[0], "avg_s": avg[0]}


if __name__ == "__main__":
    what, uri, folder = sys.argv[1:4]
    if what == "prepare":
        print(json.dumps(prepare(uri, folder)))
    else:
        print(json.dumps(search(uri, folder, int(sys.argv[4]), int(sys.argv[5]))))
