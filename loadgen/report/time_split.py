"""Where the time goes: per operation and level, Milvus's own time (results.json's ``server`` section, from the
proxy's latency histogram) against the time our client saw for the same calls; the difference is what the client
library, the generator and the network add.

- Client time is the row's own call time: its latency figures, or under the open model its ``service`` block (the
  row's latency there counts from the intended send time, so it also holds the schedule's lag, which is not a call).
- Server time is per Milvus function (``Search``, ``Query``, ``Insert``...): the server cannot tell our rows apart, so
  the sync, async and fan-out rows that call one function share one server figure.
- Milvus 2.3.5 observes whole milliseconds, truncated: the server's mean is low by up to 1 ms, and its percentiles
  are interpolated inside 1, 2, 4, 8... ms buckets (``p99_le_ms``: the bucket bound the histogram proves). Below a
  few milliseconds the split is coarse; the report says so rather than hide it.
- A sweep's levels each carry their own server section (each level is a run of its own), so the split is per level;
  ``all levels`` adds the means of every level up, weighted by calls (percentiles do not add up across levels).

Everything here is arithmetic on results documents, unit-tested on synthetic ones with known answers.
"""

from __future__ import annotations

from typing import Any

from loadgen.clients import server_function
from loadgen.report.load import Run

_QS = ("p50_ms", "p99_ms", "mean_ms")


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


def split(results: dict[str, Any]) -> list[dict[str, Any]]:
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


def _all_levels(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per operation over every level: call-weighted means (client over its calls, server over its calls)."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["type"], r["name"]), []).append(r)
    out = []
    for (typ, name), rs in sorted(by.items()):
        if len(rs) < 2:
            continue
        cn, sn = sum(r["client_calls"] for r in rs), sum(r["server_calls"] for r in rs)
        client = sum(r["client_mean_ms"] * r["client_calls"] for r in rs) / cn if cn else 0.0
        server = sum(r["server_mean_ms"] * r["server_calls"] for r in rs) / sn if sn else 0.0
        out.append({"type": typ, "name": name, "function": rs[0]["function"], "levels": len(rs),
                    "client_calls": cn, "server_calls": sn, "client_mean_ms": client, "server_mean_ms": server,
                    "overhead_mean_ms": client - server,
                    "overhead_share": (client - server) / client if client > 0 else None})  # fmt: skip
    return out


def analyse(runs: list[Run]) -> dict[str, Any]:
    """report.json's ``time_split``: per level rows, the all-levels means, and the levels without server figures."""
    rows, without = [], []
    for run in runs:
        kind, level = run.level
        found = split(run.results)
        if not found:
            without.append({"source": run.source, "kind": kind, "level": level})
        rows += [{**r, "kind": kind, "level": level, "processes": run.processes, "source": run.source} for r in found]
    rows.sort(key=lambda r: (r["function"], r["type"], r["name"], r["kind"], r["level"], r["processes"]))
    return {"rows": rows, "all_levels": _all_levels(rows), "without_server": without}
