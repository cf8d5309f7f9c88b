"""Connects sync and async pymilvus stores, waits for the test to freeze the server, then times one search each."""

# isort: split
import json
import os
import sys
import time

from loadgen.clients.pymilvus import ADAPTER
from loadgen.config.settings import Settings
from loadgen.runtime import bridge
from loadgen.stats.timing import ameasure, measure

settings = Settings(uri=os.environ["URI"], collection="frozen_check", dim=4, timeout=1.0)
search = ADAPTER.operations["search"]
sync_store = ADAPTER.open(settings, False)
async_store = ADAPTER.open(settings, True)
bridge.run(ADAPTER.attach(async_store), 10)
print("connected", flush=True)
time.sleep(1.0)  # the test freezes the server now
vec = [[0.1, 0.2, 0.3, 0.4]]
out = {}
s = measure(search.call, sync_store, vec, None)
out["sync"] = {"error": repr(s.error), "elapsed_s": s.elapsed_ms / 1000}
a = bridge.run(ameasure(lambda: search.async_call(async_store, vec, None), settings.timeout), settings.timeout + 1)
out["async"] = {"error": repr(a.error), "elapsed_s": a.elapsed_ms / 1000}
print(json.dumps(out), flush=True)
sys.stdout.flush()
os._exit(0)  # the server is frozen: skip closing connections
