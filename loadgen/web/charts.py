"""The Vector DB tab's live charts: a time series of the figures the tab's table shows, one point per table refresh.

One run, one set of numbers: a point is built from the very results document (``hooks.current_results``) and table
rows that one ``/stats/requests`` answer carries, so the latest point of every series is what the table shows.
While nobody watches the page, a sampler on the master adds a point every ``IDLE_S`` seconds from the same function,
so a page opened in the middle of a run still sees the run from its start. Figures are the run's so far (cumulative
HDR percentiles, mean recall, the open model's achieved rate over its window), as everywhere else in loadgen.

What a point holds (``FORMAT``):
- ``latency``: per table row (``"<layer> <operation>"``), per side (``sync``/``async``): ``p50_ms``, ``p99_ms``;
- ``recall``: per table row and side: the mean recall so far (4 decimals, as the table shows it);
- ``recall_recent``: the same over the searches of the last ``RECENT_S`` wall-clock seconds (the recall listener's
  ``per_second``: recall that drifts, e.g. while the index loads, shows here before it moves the mean);
- ``open_loop``: ``target_rate`` and ``achieved_rate`` (req/s) when the open model runs;
- ``server``: per Milvus function: ``server_p99_ms`` and per client request row (``"<type> <name>"``) its p99.
The page's script (``charts.js``) draws them as inline SVG; no library, no traffic beyond the UI's own server.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from loadgen.clients import server_function
from loadgen.web.table import operation_of

FORMAT = "milvus-loadgen/charts/v1"
SCRIPT = Path(__file__).with_name("charts.js")  # the page's part, served at /loadgen/charts.js
MAX_POINTS = 1800  # an hour of 2 s refreshes; older points fall off the front
RECENT_S = 5  # recall_recent: the searches of the last 5 wall-clock seconds (as far as the workers reported them)
IDLE_S = 4.0  # the sampler adds a point only when no table refresh did for this long (the page polls every 2 s)
_SIDES = ("sync", "async")


def point(
    doc: dict[str, Any],
    rows: list[dict[str, Any]],
    at: float,
    recall_seconds: dict[tuple[str, str], list[list[float]]] | None = None,
) -> dict[str, Any]:
    """One point from a results document and the tab's rows built from it (``table.rows_of``); ``recall_seconds``:
    per (request type, name) the recall listener's ``per_second`` ([[unix second, searches, mean], ...])."""
    latency: dict[str, dict[str, dict[str, float]]] = {}
    recall: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.get("layer") in ("run", "open loop", "stream", "report"):
            continue  # status rows: text, not figures
        key = f"{row['layer']} {row['operation']}"
        for side in _SIDES:
            if f"{side}_p99_ms" in row:
                latency.setdefault(key, {})[side] = {"p50_ms": row[f"{side}_p50_ms"], "p99_ms": row[f"{side}_p99_ms"]}
            if f"recall_{side}" in row:
                recall.setdefault(key, {})[side] = float(row[f"recall_{side}"])
    out: dict[str, Any] = {"at": round(at, 3), "latency": latency, "recall": recall}
    recent = recent_recall(recall_seconds or {}, at)
    if recent:
        out["recall_recent"] = recent
    ol = doc.get("open_loop") or {}
    if ol.get("intended"):
        out["open_loop"] = {"target_rate": round(ol["target_rate"], 3), "achieved_rate": round(ol["achieved_rate"], 3)}
    server = client_vs_server(doc)
    if server:
        out["server"] = server
    return out


def recent_recall(seconds: dict[tuple[str, str], list[list[float]]], at: float) -> dict[str, dict[str, float]]:
    """Per table row and side: the mean recall of the searches in the last ``RECENT_S`` seconds up to ``at``."""
    out: dict[str, dict[str, float]] = {}
    for (request_type, name), per_second in seconds.items():
        window = [(n, mean) for second, n, mean in per_second if at - RECENT_S <= second <= at and n]
        total = sum(n for n, _ in window)
        if total:
            layer, op, side = operation_of(request_type, name)
            out.setdefault(f"{layer} {op}", {})[side] = round(sum(n * mean for n, mean in window) / total, 4)
    return out


def client_vs_server(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per Milvus function: the server's p99 over the run so far and the p99 of each client row that calls it."""
    section = doc.get("server") or {}
    if not section.get("available"):
        return {}
    ops = section.get("operations", {})
    out: dict[str, dict[str, Any]] = {}
    for m in doc.get("requests", []):
        function = server_function(str(m["type"]), str(m["name"]))
        lat = ops.get(function, {}).get("latency") if function else None
        if function and lat and m.get("successes"):
            entry = out.setdefault(function, {"server_p99_ms": round(lat["p99_ms"], 3), "client_p99_ms": {}})
            entry["client_p99_ms"][f"{m['type']} {m['name']}"] = round(m["p99_ms"], 3)
    return out


def _figures(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in ("at", "t")}


class ChartHistory:
    """The points of the current test (cleared at test start); a point equal to the last one is not added again, so
    an idle UI between tests adds nothing."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.points: deque[dict[str, Any]] = deque(maxlen=max_points)
        self.start: float | None = None
        self.last_sample = 0.0  # monotonic time of the last add() call, whether it added a point or not

    def clear(self, start: float | None = None) -> None:
        self.points.clear()
        self.start = start
        self.last_sample = 0.0

    def add(self, p: dict[str, Any]) -> bool:
        self.last_sample = time.monotonic()
        if self.points and _figures(self.points[-1]) == _figures(p):
            return False
        if self.start is None:
            self.start = p["at"]
        self.points.append({"t": round(p["at"] - self.start, 3), **p})
        return True

    def idle(self, seconds: float = IDLE_S) -> bool:
        return time.monotonic() - self.last_sample >= seconds

    def document(self, links: dict[str, str]) -> dict[str, Any]:
        """What ``/loadgen/charts.json`` answers: the points in time order, and the report's links."""
        return {
            "format": FORMAT,
            "start": self.start,
            "recent_s": RECENT_S,
            "points": list(self.points),
            "links": links,
        }


def latest(doc: dict[str, Any], name: str) -> float | None:
    """The latest value of one series of a ``charts.json`` document, by the name the page gives it (see
    ``series_names``); None when the series has no point yet."""
    for p in reversed(doc.get("points", [])):
        value = _lookup(p, name)
        if value is not None:
            return value
    return None


def _lookup(p: dict[str, Any], name: str) -> float | None:
    kind, _, rest = name.partition("|")
    parts = rest.split("|")
    try:
        if kind == "latency":
            return float(p["latency"][parts[0]][parts[1]][parts[2]])
        if kind in ("recall", "recall_recent"):
            return float(p[kind][parts[0]][parts[1]])
        if kind == "open_loop":
            return float(p["open_loop"][parts[0]])
        if kind == "server":
            entry = p["server"][parts[0]]
            return float(entry["server_p99_ms"] if parts[1] == "server" else entry["client_p99_ms"][parts[1]])
    except (KeyError, IndexError):
        return None
    return None


def series_names(doc: dict[str, Any]) -> list[str]:
    """Every series a ``charts.json`` document holds, named as ``charts.js`` names its lines (``data-series``):
    ``latency|<row>|<side>|p50_ms``, ``recall|<row>|<side>``, ``recall_recent|<row>|<side>``,
    ``open_loop|target_rate``, ``server|<fn>|server``, ``server|<fn>|<client row>``."""
    names: set[str] = set()
    for p in doc.get("points", []):
        for row, sides in p.get("latency", {}).items():
            names.update(f"latency|{row}|{side}|{q}" for side, qs in sides.items() for q in qs)
        for kind in ("recall", "recall_recent"):
            for row, sides in p.get(kind, {}).items():
                names.update(f"{kind}|{row}|{side}" for side in sides)
        names.update(f"open_loop|{k}" for k in p.get("open_loop", {}))
        for fn, entry in p.get("server", {}).items():
            names.add(f"server|{fn}|server")
            names.update(f"server|{fn}|{client}" for client in entry.get("client_p99_ms", {}))
    return sorted(names)
