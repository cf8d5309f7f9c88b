"""The Vector DB tab's live charts: a time series of the figures the tab's table shows, one point per table refresh.

One run, one set of numbers: a point is built from the very results document (``hooks.current_results``) and table
rows that one ``/stats/requests`` answer carries, so the latest point of every cumulative series is what the table
shows. While nobody watches the page, a sampler on the master adds a point every ``IDLE_S`` seconds from the same
function, so a page opened in the middle of a run still sees the run from its start. Beside the run's cumulative
figures, each point has the last ``WINDOW_S`` seconds' (``window``): a spike shows at once instead of barely moving a
run's p99. They come from the same HDR histograms (their bucket counts now minus those ``WINDOW_S`` seconds ago,
``histograms.Counts``), so they are exact for the calls the workers had reported by then.

What a point holds (``FORMAT``):
- ``latency``: per table row (``"<layer> <operation>"``), per side (``sync``/``async``): ``p50_ms``, ``p99_ms`` of
  the run so far;
- ``window``: per table row and side: ``rps``, and when any call succeeded ``p50_ms``, ``p99_ms``, of the last
  ``WINDOW_S`` seconds;
- ``recall``: per table row and side: the mean recall so far (4 decimals, as the table shows it);
- ``recall_recent``: the same over the searches of the last ``RECENT_S`` wall-clock seconds (the recall listener's
  ``per_second``: recall that drifts, e.g. while the index loads, shows here before it moves the mean);
- ``open_loop``: ``target_rate`` and ``achieved_rate`` (req/s) when the open model runs;
- ``server``: per Milvus function: ``server_p99_ms``, per client request row (``"<type> <name>"``) its p99, and the
  table rows whose calls land on it (``rows``).
The page's script (``charts.js``) draws them with uPlot (vendored in ``vendor/``, served by the UI's own server).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from loadgen.clients import server_function
from loadgen.stats.histograms import Counts, LatencyHistograms
from loadgen.web.table import operation_of

FORMAT = "milvus-loadgen/charts/v2"
SCRIPT = Path(__file__).with_name("charts.js")  # the page's part, served at /loadgen/charts.js
VENDOR = Path(__file__).with_name("vendor")  # uPlot (MIT), served at /loadgen/vendor/<file>
MAX_POINTS = 1800  # an hour of 2 s refreshes; older points fall off the front
RECENT_S = 5  # recall_recent: the searches of the last 5 wall-clock seconds (as far as the workers reported them)
WINDOW_S = 10.0  # window: the calls of the last 10 s (Locust's own "current" figures use 10 s too)
IDLE_S = 4.0  # the sampler adds a point only when no table refresh did for this long (the page polls every 2 s)
_SIDES = ("sync", "async")


class Windows:
    """The bucket counts of every request row at each point of the last ``WINDOW_S`` seconds: a point's ``window``
    figures are the counts now minus those of the newest point at least ``WINDOW_S`` seconds older (or the test's
    start)."""

    def __init__(self) -> None:
        self._points: deque[tuple[float, dict[tuple[str, str], Counts]]] = deque()

    def clear(self, start: float) -> None:
        self._points = deque([(start, {})])

    def figures(self, histograms: LatencyHistograms | None, doc: dict[str, Any], at: float) -> dict[str, Any]:
        """Per table row and side: ``rps``, ``p50_ms`` and ``p99_ms`` of the calls since ``WINDOW_S`` ago."""
        if histograms is None or not self._points:
            return {}
        now: dict[tuple[str, str], Counts] = {}
        for m in doc.get("requests", []):
            counts = histograms.counts(str(m["type"]), str(m["name"]))
            if counts is not None:
                now[(str(m["type"]), str(m["name"]))] = counts
        while len(self._points) > 1 and self._points[1][0] <= at - WINDOW_S:
            self._points.popleft()  # the newest point at least WINDOW_S old stays the base
        base_at, base = self._points[0]
        self._points.append((at, now))
        elapsed = max(at - base_at, 1e-9)
        out: dict[str, Any] = {}
        for (request_type, name), counts in now.items():
            layer, op, side = operation_of(request_type, name)
            recent = counts.since(base.get((request_type, name)), (50.0, 99.0))
            figures = {"rps": round(recent["count"] / elapsed, 3)}
            if recent["count"]:
                figures.update(p50_ms=round(recent["p50_ms"], 3), p99_ms=round(recent["p99_ms"], 3))
            out.setdefault(f"{layer} {op}", {})[side] = figures
        return out


def point(
    doc: dict[str, Any],
    rows: list[dict[str, Any]],
    at: float,
    recall_seconds: dict[tuple[str, str], list[list[float]]] | None = None,
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One point from a results document and the tab's rows built from it (``table.rows_of``); ``recall_seconds``:
    per (request type, name) the recall listener's ``per_second`` ([[unix second, searches, mean], ...]);
    ``window``: ``Windows.figures`` of the same moment."""
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
    if window:
        out["window"] = window
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
            entry = out.setdefault(
                function, {"server_p99_ms": round(lat["p99_ms"], 3), "client_p99_ms": {}, "rows": []}
            )
            entry["client_p99_ms"][f"{m['type']} {m['name']}"] = round(m["p99_ms"], 3)
            layer, op, _side = operation_of(str(m["type"]), str(m["name"]))
            if f"{layer} {op}" not in entry["rows"]:
                entry["rows"] = sorted([*entry["rows"], f"{layer} {op}"])
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
            "window_s": WINDOW_S,
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
        if kind in ("latency", "window"):
            return float(p[kind][parts[0]][parts[1]][parts[2]])
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
    """Every series a ``charts.json`` document holds, named as ``charts.js`` names its series:
    ``latency|<row>|<side>|p50_ms``, ``window|<row>|<side>|rps``, ``recall|<row>|<side>``,
    ``recall_recent|<row>|<side>``, ``open_loop|target_rate``, ``server|<fn>|server``, ``server|<fn>|<client row>``."""
    names: set[str] = set()
    for p in doc.get("points", []):
        for kind in ("latency", "window"):
            for row, sides in p.get(kind, {}).items():
                names.update(f"{kind}|{row}|{side}|{q}" for side, qs in sides.items() for q in qs)
        for kind in ("recall", "recall_recent"):
            for row, sides in p.get(kind, {}).items():
                names.update(f"{kind}|{row}|{side}" for side in sides)
        names.update(f"open_loop|{k}" for k in p.get("open_loop", {}))
        for fn, entry in p.get("server", {}).items():
            names.add(f"server|{fn}|server")
            names.update(f"server|{fn}|{client}" for client in entry.get("client_p99_ms", {}))
    return sorted(names)
