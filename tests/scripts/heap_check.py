"""Users freeze what they hold once connected (``runtime.freeze_heap``) and a test stop thaws it: 5 sync and 5 async
users of the fake store in a local runner, as a run has them. Prints one JSON line."""

from __future__ import annotations

import loadgen.runtime  # noqa: F401  - first: the gevent/asyncio policy

# isort: split
import gc
import json

import gevent
from fake_runner import start

from loadgen.users.fake import AsyncFakeUser, FakeUser

out: dict[str, object] = {"frozen_before": gc.get_freeze_count()}
runner, _ = start([FakeUser, AsyncFakeUser], ["--weights", "search=1,fanout=0", "--rows", "100", "--dim", "8"], 10)
gevent.sleep(0.5)
out["frozen_running"] = gc.get_freeze_count()
out["requests_running"] = runner.stats.total.num_requests
runner.stop()
out["frozen_after_stop"] = gc.get_freeze_count()
runner.quit()
print(json.dumps(out))
