"""Client time against Milvus's own time for one run: per request row that a Milvus function serves, the row's call
time beside the server's figure for that function (results.json's ``server`` section, from the proxy's latency
histogram); the difference is what the client library, the generator and the network add.

- Client time is the row's own call time: its latency figures, or under the open model its ``service`` block (the
  row's latency there counts from the intended send time, so it also holds the schedule's lag, which is not a call).
- Server time is per Milvus function (``Search``, ``Query``, ``Insert``...): the server cannot tell our rows apart, so
  the sync, async and fan-out rows that call one function share one server figure.

``loadgen report`` splits every level of several runs with it (``loadgen.report.time_split``), a run's own
report.html its one run (``loadgen.stats.run_page``). ``server_function``: a row's Milvus function
(``loadgen.clients.server_function``, from the operation records), passed in as ``server_metrics.summary_lines``
takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_QS = ("p50_ms", "p99_ms", "mean_ms")

ServerFunction = Callable[[str, str], str | None]


def _client(m: dict[str, Any]) -> dict[str, float] | None:
    """The row's own call time over its successful calls (``service`` under the open model)."""
    service = m.get("service")
    if isinstance(service, dict) and service.get("count"):
        return {"count": float(service["count"]), **{q: float(service[q]) for q in _QS}}
    n = m["successes"] if "successes" in m else int(m.get("requests", 0)) - int(m.get("failures", 0))  # v1: no field
    if not n:
        return None
    return {"count": float(n), "p50_ms": float(m["p50_ms"]), "p99_ms": float(m["p99_ms"]),
            "mean_ms": float(m["avg_ms"])}  # fmt: skip


def _server(section: Any, function: str) -> dict[str, float] | None:
    if not isinstance(section, dict) or not section.get("available"):
        return None
    lat = (section.get("operations", {}).get(function) or {}).get("latency")
    if not isinstance(lat, dict) or not lat.get("count"):
        return None
    return {"count": float(lat["count"]), "p99_le_ms": float(lat.get("p99_le_ms", 0.0)),
            **{q: float(lat[q]) for q in _QS}}  # fmt: skip


def split(results: dict[str, Any], server_function: ServerFunction) -> list[dict[str, Any]]:
    """One row per request row that a Milvus function serves and the server measured: client, server, overhead."""
    rows = []
    for m in results.get("requests", []):
        if not isinstance(m, dict):
            continue
        function = server_function(str(m.get("type", "")), str(m.get("name", "")))
        client = _client(m) if function else None
        server = _server(results.get("server"), function) if function and client else None
        if function is None or client is None or server is None:
            continue
        row: dict[str, Any] = {"type": m["type"], "name": m["name"], "function": function,
                               "client_from": "service" if isinstance(m.get("service"), dict) else "latency",
                               "client_calls": int(client["count"]), "server_calls": int(server["count"]),
                               "server_p99_le_ms": server["p99_le_ms"]}  # fmt: skip
        for q in _QS:
            row[f"client_{q}"], row[f"server_{q}"] = client[q], server[q]
            row[f"overhead_{q}"] = client[q] - server[q]
        row["overhead_share"] = row["overhead_mean_ms"] / client["mean_ms"] if client["mean_ms"] > 0 else None
        rows.append(row)
    return rows
