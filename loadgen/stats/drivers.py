"""Which driver ran each user class, in each process, as a merged statistic: results.json's ``run.drivers``, the
summary, the web UI's tab and the report say which mechanism produced the figures beside them.

Each process counts the users of each (class, request type, driver) it started; a worker sends what it counted since
its last report, and the master adds it up under the worker's id (``local``: a local runner's own users).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loadgen.stats.listeners import MergedListener

PAYLOAD_FORMAT = "milvus-loadgen/drivers-payload/v1"
REPORT_KEY = "loadgen_drivers"
LOCAL = "local"

Key = tuple[str, str, str, str]  # process, class, request type, driver


class DriverStats(MergedListener):
    report_key = REPORT_KEY
    what = "drivers"

    def __init__(self, environment: Any) -> None:
        self.users: Counter[Key] = Counter()
        self._from = LOCAL  # the worker whose report is being merged
        super().__init__(environment)

    def on_request(self, request_type: str, name: str, **kwargs: Any) -> None:
        """Users say which driver they run on when they start, not through request events."""

    def started(self, user_class: str, request_type: str, driver: str) -> None:
        """A user of ``user_class`` started on ``driver`` in this process."""
        self.users[(LOCAL, user_class, request_type, driver)] += 1

    def has_data(self) -> bool:
        return bool(self.users)

    def to_payload(self) -> dict[str, Any]:
        rows = [[cls, kind, driver, n] for (_, cls, kind, driver), n in self.users.items()]
        return {"format": PAYLOAD_FORMAT, "users": rows}

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        self._from = client_id
        super().on_worker_report(client_id, data)

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen drivers payload: format {payload.get('format')!r}")
        for cls, kind, driver, n in payload["users"]:
            self.users[(self._from, str(cls), str(kind), str(driver))] += int(n)

    def reset(self) -> None:
        self.users = Counter()

    def on_stats_reset(self, **_: Any) -> None:
        """Which driver ran is no figure of a window: a reset of the statistics keeps it."""

    def results(self) -> dict[str, Any]:
        return {"drivers": self.entries()}

    def entries(self) -> list[dict[str, Any]]:
        """One entry per process and class: the driver its users ran on, and how many it started."""
        return [
            {"process": process, "class": cls, "type": kind, "driver": driver, "users": n}
            for (process, cls, kind, driver), n in sorted(self.users.items())
        ]

    def write(self) -> None:
        """Nothing of its own to write: the entries are results.json's ``run.drivers``."""


def by_class(entries: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each class's drivers over every process (one driver each, unless processes ran it differently)."""
    out: dict[str, set[str]] = {}
    for e in entries:
        out.setdefault(str(e.get("class", "")), set()).add(str(e.get("driver", "")))
    return out


def by_type(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Request type -> the driver(s) its rows were made on, e.g. ``thread`` or ``greenlet+thread``."""
    found: dict[str, set[str]] = {}
    for e in entries:
        found.setdefault(str(e.get("type", "")), set()).add(str(e.get("driver", "")))
    return {kind: "+".join(sorted(names)) for kind, names in found.items()}


def line(entries: list[dict[str, Any]]) -> str:
    """One line for the summary and the web UI: which driver ran each class, users and processes."""
    if not entries:
        return ""
    parts = []
    for cls, names in sorted(by_class(entries).items()):
        mine = [e for e in entries if e.get("class") == cls]
        users = sum(int(e.get("users", 0)) for e in mine)
        processes = len({e.get("process") for e in mine})
        where = f"{users} users" + (f" in {processes} processes" if processes > 1 else "")
        parts.append(f"{cls} {'+'.join(sorted(names))} ({where})")
    return "drivers: " + ", ".join(parts)
