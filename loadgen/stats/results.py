"""Turn Locust's final stats into loadgen's results: ``results.json`` and the summary table printed at the end.

Locust's JSON keeps, per request name, the float sum of response times (so the mean is exact) and a histogram of
response times rounded to whole ms below 100 ms; the percentiles come from loadgen's microsecond HDR histograms
(``latency.json``) when they exist.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from loadgen.stats.arrivals import read_results as read_open_loop
from loadgen.stats.recall import read_results

PERCENTILES = (0.50, 0.95, 0.99)


def _percentile(buckets: dict[str, int], total: int, q: float) -> float:
    if not total:
        return 0.0
    target, seen = q * total, 0
    for value, count in sorted(((float(k), v) for k, v in buckets.items())):
        seen += count
        if seen >= target:
            return value
    return max(float(k) for k in buckets)


def entry_metrics(entry: dict[str, Any]) -> dict[str, Any]:
    n, fails = int(entry["num_requests"]), int(entry["num_failures"])
    duration = max(float(entry["last_request_timestamp"] or 0) - float(entry["start_time"] or 0), 1e-9)
    out: dict[str, Any] = {
        "type": entry["method"],
        "name": entry["name"],
        "requests": n,
        "failures": fails,
        "rps": n / duration if n else 0.0,
        "avg_ms": float(entry["total_response_time"]) / n if n else 0.0,
        "min_ms": float(entry["min_response_time"] or 0.0),
        "max_ms": float(entry["max_response_time"] or 0.0),
        "response_length_total": int(entry["total_content_length"]),
    }
    for q in PERCENTILES:
        out[f"p{round(q * 100)}_ms"] = _percentile(entry["response_times"], n, q)
    return out


# what a failure was, from its text (see timing.ReportedError): first match wins
_KINDS = (
    ("timeout", ("CallTimeout(", "DEADLINE_EXCEEDED", "no answer within")),
    ("unavailable", ("UNAVAILABLE", "Fail connecting", "failed to connect", "unavailable", "Connection refused")),
    ("auth", ("UNAUTHENTICATED", "PERMISSION_DENIED", "auth check failure")),
    ("server", ("MilvusException(", "Swallowed")),
)


def failure_kind(error: str) -> str:
    """``timeout``, ``unavailable`` (server down or unreachable), ``auth``, ``server`` (the server answered with
    an error) or ``client`` (anything raised on our side)."""
    return next((kind for kind, marks in _KINDS if any(m in error for m in marks)), "client")


def read_failures(csv_path: Path) -> list[dict[str, Any]]:
    if not csv_path.exists():
        return []
    with csv_path.open(newline="") as fh:
        return [
            {
                "type": r["Method"], "name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"]),
                "kind": failure_kind(r["Error"]),
            }
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def _with_hdr(requests: list[dict[str, Any]], latency_file: Path) -> str:
    """Replace Locust's whole-millisecond percentiles with our microsecond HDR ones where we have them."""
    if not latency_file.exists():
        return "locust"
    latency = json.loads(latency_file.read_text())
    hdr = {(r["type"], r["name"]): r for r in latency.get("requests", [])}
    service = {(r["type"], r["name"]): r for r in latency.get("service_requests", [])}
    for m in requests:
        h = hdr.get((m["type"], m["name"]))
        if h and h["count"]:
            m.update({k: h[k] for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "min_ms", "max_ms")})
            m["hdr_count"] = h["count"]  # successful requests; Locust's count includes failures
        sv = service.get((m["type"], m["name"]))
        if sv and sv["count"]:  # open model: the calls' own times, without the queueing the schedule exposed
            m["service"] = {k: sv[k] for k in ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")}
    return "hdr"


def build_results(out_dir: Path, *, settings: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    stats_file = out_dir / "locust.json"
    entries = json.loads(stats_file.read_text()) if stats_file.exists() else []
    requests = sorted((entry_metrics(e) for e in entries), key=lambda m: (m["name"], m["type"]))
    run = {**run, "percentiles_from": _with_hdr(requests, out_dir / "latency.json")}
    total_n = sum(m["requests"] for m in requests)
    total_f = sum(m["failures"] for m in requests)
    recall = read_results(out_dir / "recall.json")  # {"<type> <name>": {mean, p1, p5, p50, min, count}}
    open_loop = open_loop_section(read_open_loop(out_dir / "open_loop.json"), run)
    workers_file = out_dir / "workers.json"  # distributed runs: workers seen and lost (loadgen.locust.workers)
    workers = json.loads(workers_file.read_text()) if workers_file.exists() else None
    return {
        "format": "milvus-loadgen/results/v1",
        "run": run,
        "settings": settings,
        "requests": requests,
        "totals": {"requests": total_n, "failures": total_f, "fail_ratio": total_f / total_n if total_n else 0.0},
        "failures": read_failures(out_dir / "stats_failures.csv"),
        **({"recall": recall} if recall else {}),
        **({"open_loop": open_loop} if open_loop else {}),
        **({"workers": workers} if workers is not None else {}),
    }


def open_loop_section(raw: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The open model's totals (schedule vs what was sent) over its main schedules, streams listed apart."""
    by_type = raw.get("by_type", {})
    main = {k: v for k, v in by_type.items() if not k.endswith("[stream]")}
    if not by_type:
        return {}
    out: dict[str, Any] = {"by_type": by_type}
    if main:
        starts = [v["window_start"] for v in main.values() if v.get("window_start") is not None]
        sent = sum(v["sent"] for v in main.values())
        window = max(v["window_end"] for v in main.values()) - min(starts) if starts else 0.0
        out.update(
            target_rate=run.get("arrival_rate") or sum(v["target_rate"] for v in main.values()),
            intended=sum(v["intended"] for v in main.values()),
            sent=sent,
            late=sum(v["late"] for v in main.values()),
            dropped=sum(v["dropped"] for v in main.values()),
            window_s=window,
            achieved_rate=sent / window if window > 0 else 0.0,
        )
    return out


def render_table(results: dict[str, Any]) -> str:
    header: tuple[str, ...] = ("type", "name", "reqs", "fails", "req/s", "avg ms", "p50", "p95", "p99", "max ms")
    rows: list[tuple[str, ...]] = [
        (
            m["type"],
            m["name"],
            str(m["requests"]),
            str(m["failures"]),
            f"{m['rps']:.1f}",
            f"{m['avg_ms']:.2f}",
            f"{m['p50_ms']:.3f}",
            f"{m['p95_ms']:.3f}",
            f"{m['p99_ms']:.3f}",
            f"{m['max_ms']:.1f}",
        )
        for m in results["requests"]
    ]
    t = results["totals"]
    rows.append(("", "TOTAL", str(t["requests"]), str(t["failures"]), "", "", "", "", "", ""))
    recall = results.get("recall")
    if isinstance(recall, dict) and recall:  # a column of mean recall@k, for the requests that measured it
        header = (*header, "recall")
        means = {
            key: f"{entry['mean']:.4f}"
            for key, entry in recall.items()
            if isinstance(entry, dict) and isinstance(entry.get("mean"), int | float)
        }
        rows = [(*r, means.get(f"{r[0]} {r[1]}", "")) for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    lines = [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)]
    ol = results.get("open_loop") or {}
    if "sent" in ol:
        lines.append(
            f"open model: target {ol['target_rate']:.1f} req/s, sent {ol['achieved_rate']:.1f} req/s "
            f"({ol['sent']} sent, {ol['late']} late, {ol['dropped']} dropped); latency counted from the intended "
            "send time"
        )
    for kind, c in sorted(ol.get("by_type", {}).items()):
        if kind.endswith("[stream]"):
            rates = ", ".join(f"{op}={r:g}/s" for op, r in c.get("streams", {}).items())
            lines.append(f"stream {kind}: {rates}: {c['sent']} sent, {c['dropped']} dropped")
    for f in results["failures"][:10]:
        kind = f.get("kind") or failure_kind(f["error"])
        lines.append(f"failure: {f['type']} {f['name']} x{f['occurrences']} [{kind}]: {f['error'][:200]}")
    return "\n".join(lines)
