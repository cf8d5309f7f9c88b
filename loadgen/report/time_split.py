"""Where the time goes: per operation and level, Milvus's own time (results.json's ``server`` section, from the
proxy's latency histogram) against the time our client saw for the same calls; the difference is what the client
library, the generator and the network add.

- Client and server time per row are ``loadgen.stats.client_server``'s (a run's own report.html splits the same way).
- Milvus 2.3.5 observes whole milliseconds, truncated: the server's mean is low by up to 1 ms, and its percentiles
  are interpolated inside 1, 2, 4, 8... ms buckets (``p99_le_ms``: the bucket bound the histogram proves). Below a
  few milliseconds the split is coarse; the report says so rather than hide it.
- A sweep's levels each carry their own server section (each level is a run of its own), so the split is per level;
  ``all levels`` adds the means of every level up, weighted by calls (percentiles do not add up across levels).

Everything here is arithmetic on results documents, unit-tested on synthetic ones with known answers.
"""

from __future__ import annotations

from typing import Any

from loadgen import clients
from loadgen.report.load import Run
from loadgen.stats import client_server


def split(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per request row that a Milvus function serves and the server measured (``stats.client_server``)."""
    return client_server.split(results, clients.server_function)


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
