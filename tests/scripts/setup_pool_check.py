"""Setup calls (``off_hub``: a library's blocking constructor) must not take the hub's thread pool, where grpc's
gevent integration waits for every sync call's completion. Twelve setup calls block (a frozen server's connect);
a call on the hub's pool must still answer at once. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import json
import threading
import time

import gevent

from loadgen.runtime import off_hub

release = threading.Event()  # a real event: the pool's threads are real threads
blockers = [gevent.spawn(off_hub, release.wait, 10.0) for _ in range(12)]
gevent.sleep(0.5)  # every blocker holds a setup thread, or waits for one
start = time.perf_counter()
value = gevent.get_hub().threadpool.apply(lambda: "answered")  # as a sync grpc call's completion wait does
waited = time.perf_counter() - start
release.set()
gevent.joinall(blockers, timeout=15)
print(json.dumps({"value": value, "waited_s": waited, "setup_calls_done": sum(g.successful() for g in blockers)}))
