"""Cold against warm: the first searches after the collection is loaded again (release and load) and after the
server restarts, each set against the warm steady state.

One client searches serially (one call at a time, as VectorDBBench's cold-latency case does), so each figure is the
server's answer time and nothing queues behind it. For each event:
- ``first_success_s``: from the start of the event (the release, or the restart command) to the first search that
  succeeded; searches before it failed (``failures``) or could not yet be sent;
- ``first_ms``: that first search's own latency;
- ``settle_s``: seconds from the first success to the earliest ``WINDOW_S`` window from which on the p99 of the
  searches stays within ``SETTLED`` times the warm p99 (plus ``SLACK_MS``, so that a sub-millisecond warm p99 is not
  judged by noise); None when it never did within the event's measured seconds.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loadgen.config.settings import Settings

FORMAT = "milvus-loadgen/coldwarm/v1"
FILE = "coldwarm.json"  # in the folder of `loadgen coldwarm --out`, where `loadgen report` finds it
WINDOW_S = 1.0
SETTLED = 1.5
SLACK_MS = 1.0
FIRST_SUCCESS_TIMEOUT_S = 180.0  # a server that restarts may answer "collection not loaded" for a while (NOTES)

Sample = tuple[float, float | None]  # (seconds since the event began, latency in ms or None: failed)


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def settle_s(samples: list[Sample], warm_p99_ms: float) -> float | None:
    """Seconds from the first success to the start of the earliest window from which on the p99 of all later
    searches is within the warm bound (see the module); None when even the last window's is not."""
    ok = [(t, ms) for t, ms in samples if ms is not None]
    if not ok:
        return None
    start, bound = ok[0][0], warm_p99_ms * SETTLED + SLACK_MS
    windows: dict[int, list[float]] = {}
    for t, ms in ok:
        windows.setdefault(int((t - start) // WINDOW_S), []).append(ms)
    settled: float | None = None
    rest: list[float] = []
    for index in sorted(windows, reverse=True):  # from the end: the searches of this window and all later ones
        rest += windows[index]
        if p99(rest) <= bound:
            settled = index * WINDOW_S
    return settled


def event_figures(event: str, samples: list[Sample], warm_p99_ms: float, **extra: Any) -> dict[str, Any]:
    ok = [(t, ms) for t, ms in samples if ms is not None]
    first = ok[0] if ok else None
    out: dict[str, Any] = {
        "event": event,
        "first_success_s": round(first[0], 4) if first else None,
        "first_ms": round(first[1], 3) if first and first[1] is not None else None,
        "failures": sum(1 for _, ms in samples if ms is None),
        "searches": len(ok),
        "settle_s": settle_s(samples, warm_p99_ms),
        "first_window_p99_ms": round(p99([ms for t, ms in ok if first and t - first[0] < WINDOW_S]), 3),
        **extra,
        "samples": [[round(t, 4), None if ms is None else round(ms, 3)] for t, ms in samples],
    }
    return out


class Searcher:
    """Serial searches of one collection with one client (rebuilt by ``reconnect`` after a restart)."""

    def __init__(self, settings: Settings, connect: Callable[[], Any]) -> None:
        self.settings, self.connect = settings, connect
        self.client = connect()
        rng = np.random.default_rng(settings.seed + 7)
        self.vectors = rng.standard_normal((64, settings.dim)).astype("float32").tolist()
        self._next = 0
        self.params = {"metric_type": settings.metric_type, "params": settings.search_params}

    def reconnect(self) -> None:
        with contextlib.suppress(Exception):  # the old server is gone: its channel may fail to close
            self.client.close()
        self.client = self.connect()

    def one(self) -> float | None:
        """One search: its latency in ms, or None when it failed."""
        vector = self.vectors[self._next % len(self.vectors)]
        self._next += 1
        start = time.perf_counter()
        try:
            self.client.search(
                self.settings.collection, data=[vector], limit=self.settings.top_k, search_params=self.params,
                consistency_level=self.settings.consistency_level, timeout=self.settings.timeout,
            )  # fmt: skip
        except Exception:  # not loaded yet, not reachable yet: counted as a failure of the cold start
            return None
        return (time.perf_counter() - start) * 1000.0

    def series(self, began: float, seconds: float) -> list[Sample]:
        """Search until the first success (at most ``FIRST_SUCCESS_TIMEOUT_S``), then ``seconds`` more; times are
        from ``began`` (a perf_counter)."""
        samples: list[Sample] = []
        first: float | None = None
        while True:
            ms = self.one()
            now = time.perf_counter() - began
            samples.append((now, ms))  # a sample's time is when its answer came
            if ms is not None and first is None:
                first = now
            if first is not None and now - first >= seconds:
                return samples
            if first is None:
                if now > FIRST_SUCCESS_TIMEOUT_S:
                    return samples
                time.sleep(0.05)  # a server not ready yet is asked 20 times a second, not flooded


def measure(
    settings: Settings,
    connect: Callable[[], Any],
    *,
    seconds: float,
    restart: Callable[[], Any] | None,
    scale: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Warm steady state, then release and load, then (``scale`` given) the searches from the start of a scale-out
    (a replica added: your command), then (``restart`` given) a server restart; the coldwarm document."""
    s = Searcher(settings, connect)
    warm = [ms for _, ms in s.series(time.perf_counter(), seconds) if ms is not None]
    warm_p99 = p99(warm)
    out: dict[str, Any] = {
        "format": FORMAT, "collection": settings.collection, "window_s": WINDOW_S, "settled_within": SETTLED,
        "warm": {"searches": len(warm), "p50_ms": round(float(np.percentile(warm, 50)), 3) if warm else 0.0,
                 "p99_ms": round(warm_p99, 3)},
        "events": [],
    }  # fmt: skip
    began = time.perf_counter()
    s.client.release_collection(settings.collection, timeout=max(settings.timeout, 60))
    released = time.perf_counter() - began
    s.client.load_collection(settings.collection, timeout=max(settings.timeout, 120))
    loaded = time.perf_counter() - began
    samples = s.series(began, seconds)
    out["events"].append(
        event_figures("release-load", samples, warm_p99, release_s=round(released, 4), load_s=round(loaded, 4))
    )
    if scale is not None:  # the searches go on while it runs: a new replica may slow them before it serves
        began = time.perf_counter()
        scale()
        done = time.perf_counter() - began
        samples = s.series(began, seconds)
        out["events"].append(event_figures("scale-out", samples, warm_p99, command_s=round(done, 4)))
    if restart is not None:
        began = time.perf_counter()
        restart()
        up = time.perf_counter() - began
        s.reconnect()
        samples = s.series(began, seconds)
        out["events"].append(event_figures("restart", samples, warm_p99, server_up_s=round(up, 4)))
    return out


def lines(doc: dict[str, Any]) -> list[str]:
    """The summary: the warm state, then one line per event."""
    w = doc.get("warm") or {}
    out = [f"warm: p50 {w.get('p50_ms', 0):.3f} ms, p99 {w.get('p99_ms', 0):.3f} ms over {w.get('searches', 0)} "
           "serial searches"]  # fmt: skip
    for e in doc.get("events", []):
        if e.get("first_success_s") is None:
            out.append(f"{e['event']}: no search succeeded ({e['failures']} failed)")
            continue
        settle = f"p99 settled after {e['settle_s']:g} s" if e.get("settle_s") is not None else "p99 never settled"
        took = (
            (f"load took {e['load_s']:.2f} s, " if "load_s" in e else "")
            + (f"server up after {e['server_up_s']:.1f} s, " if "server_up_s" in e else "")
            + (f"the command took {e['command_s']:.1f} s, " if "command_s" in e else "")
        )
        began = {"release-load": "release", "scale-out": "scale-out command began"}.get(e["event"], "restart began")
        out.append(
            f"{e['event']}: {took}first successful search {e['first_success_s']:.2f} s after the "
            f"{began} ({e['failures']} failed before), "
            f"taking {e['first_ms']:.1f} ms; first second's p99 {e['first_window_p99_ms']:.1f} ms; {settle} "
            f"(within {doc.get('settled_within', SETTLED):g}x the warm p99)"
        )
    return out
