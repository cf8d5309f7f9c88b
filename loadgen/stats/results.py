"""A run's results, built in one place from the live statistics of the master (or local runner): ``results.json``
at the end of every run (``loadgen run``, a plain ``locust`` command, the web UI, a Kubernetes Job), the web UI's
``/loadgen/results.json`` while it runs, and the summary table. Every figure is defined in ``loadgen.stats.figures``.

Format ``milvus-loadgen/results/v2`` (v1 before it): request rows are store calls only (no ``embedding`` or
``*-batch`` rows: embedding time is each row's ``embedding`` block, fan-out batches are in ``batches``), latency
figures are over successful calls, and ``totals`` carries ``qps`` and ``window_s``.
"""

from __future__ import annotations

from typing import Any

from loadgen.stats import drivers, figures, ingest, resets, runbook
from loadgen.stats.flows import render_lines as flow_lines
from loadgen.stats.histograms import HistogramListener, LatencyHistograms

FORMAT = "milvus-loadgen/results/v2"
FORMATS = ("milvus-loadgen/results/v1", FORMAT)  # what readers (report, sweeps) accept

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


def build(
    stats: Any,
    *,
    histograms: HistogramListener | None,
    settings: dict[str, Any],
    run: dict[str, Any],
    sections: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``stats``: Locust's ``RequestStats`` (counts of calls and failures, the failures' texts); ``histograms``:
    loadgen's microsecond histograms (latency of successes, service, embedding, batches); ``sections``: the other
    merged statistics (recall, open_loop, workers, ...), each already in its results.json shape."""
    latency = histograms.histograms if histograms is not None else LatencyHistograms()
    service = histograms.service if histograms is not None else None
    embedding = histograms.embedding if histograms is not None else None
    window = figures.window_s(stats.total.start_time, stats.total.last_request_timestamp)
    rows = [
        figures.request_row(
            e.method, e.name, requests=e.num_requests, failures=e.num_failures, length=e.total_content_length,
            window=window, latency=latency, service=service, embedding=embedding,
            shape=getattr(histograms, "shape", None),
        )
        for e in stats.entries.values()
        if e.num_requests
    ]  # fmt: skip
    rows.sort(key=lambda m: (m["name"], m["type"]))
    failures = [
        {"type": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences,
         "kind": failure_kind(str(e.error))}
        for e in stats.errors.values()
    ]  # fmt: skip
    failures.sort(key=lambda f: -int(f["occurrences"]))
    extra: dict[str, Any] = {}
    if histograms is not None and histograms.batches:
        extra["batches"] = histograms.batches.summary()
    if histograms is not None and histograms.skipped:
        extra["skipped"] = {f"{t} {n}": c for (t, n), c in sorted(histograms.skipped.items())}
    return {
        "format": FORMAT,
        "run": {**run, "percentiles_from": "hdr"},
        "settings": settings,
        "requests": rows,
        "totals": figures.totals(rows, window),
        "failures": failures,
        **{k: v for k, v in (sections or {}).items() if v},
        **extra,
    }


def open_loop_section(raw: dict[str, Any], arrival_rate: float) -> dict[str, Any]:
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
            target_rate=arrival_rate or sum(v["target_rate"] for v in main.values()),
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

    def row(m: dict[str, Any]) -> tuple[str, ...]:
        return (m["type"], m["name"], str(m["requests"]), str(m["failures"]), f"{m['rps']:.1f}", f"{m['avg_ms']:.3f}",
                f"{m['p50_ms']:.3f}", f"{m['p95_ms']:.3f}", f"{m['p99_ms']:.3f}", f"{m['max_ms']:.1f}")  # fmt: skip

    t = results["totals"]
    qps = f"{t['qps']:.1f}" if "qps" in t else ""
    rows = [row(m) for m in results["requests"] if not figures.is_flow(m)]
    rows.append(("", "TOTAL", str(t["requests"]), str(t["failures"]), qps, "", "", "", "", ""))
    rows += [row(m) for m in results["requests"] if figures.is_flow(m)]  # apart: their calls are rows above
    header, rows = _shape_columns(results, header, rows)
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
    lines.append(
        f"latencies: successful calls, ms (HDR, microsecond resolution); fail ratio {t.get('fail_ratio', 0.0):.2%}"
        + (f" over {t['window_s']:.1f} s" if t.get("window_s") else "")
    )
    if "qv/s" in header or "bytes/call" in header:
        lines.append("qv/s: query vectors searched per second (--nq per call); bytes/call: mean size of a search's "
                     "answer (its SearchResults message); recall: mean over query vectors")  # fmt: skip
    lines += _extra_lines(results)
    return "\n".join(lines)


def _shape_columns(
    results: dict[str, Any], header: tuple[str, ...], rows: list[tuple[str, ...]]
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Query vectors per second and mean response bytes per call (``loadgen.stats.shape``), where any row has them;
    the TOTAL row carries the run's query vectors per second."""
    requests = {(m["type"], m["name"]): m for m in results["requests"]}
    total = {"qvps": results["totals"]["qvps"]} if "qvps" in results["totals"] else {}

    def of(r: tuple[str, ...]) -> dict[str, Any]:
        return total if r[:2] == ("", "TOTAL") else requests.get((r[0], r[1]), {})

    if any("qvps" in m for m in requests.values()):
        header = (*header, "qv/s")
        rows = [(*r, f"{of(r)['qvps']:.1f}" if "qvps" in of(r) else "") for r in rows]
    if any("response_bytes_per_call" in m for m in requests.values()):
        header = (*header, "bytes/call")
        rows = [(*r, f"{of(r)['response_bytes_per_call']:.0f}" if "response_bytes_per_call" in of(r) else "")
                for r in rows]  # fmt: skip
    return header, rows


def _extra_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    if left_out := resets.line(results.get("run", {})):  # a warm-up: what every figure above leaves out
        lines.append(left_out)
    if ran := drivers.line(results.get("run", {}).get("drivers") or []):
        lines.append(ran)
    lines += notes(results)
    lines += flow_lines(results.get("flows") or {})  # where each flow's time goes
    for f in results["failures"][:10]:
        kind = f.get("kind") or failure_kind(f["error"])
        lines.append(f"failure: {f['type']} {f['name']} x{f['occurrences']} [{kind}]: {f['error'][:200]}")
    for line in (results.get("checks") or {}).get("failed", []):
        lines.append(line)
    return lines


def notes(results: dict[str, Any]) -> list[str]:
    """The summary's lines for the statistics beside the rows: embedding time, fan-out batches, the open model's
    sends, streams, recall per runbook step, ingest readiness and relevance (the run's report.html shows the same
    lines)."""
    lines = []
    emb = [(m["type"], m["name"], m["embedding"]) for m in results["requests"] if m.get("embedding")]
    for request_type, name, e in emb:
        lines.append(f"embedding inside {request_type} {name}: mean {e['mean_ms']:.3f} ms, p99 {e['p99_ms']:.3f} ms "
                     f"per call (not in the call's latency)")  # fmt: skip
    for b in results.get("batches", []):
        lines.append(f"fan-out batch {b['type']} {b['name']}: {b['count']} batches, p50 {b['p50_ms']:.3f} ms, "
                     f"p99 {b['p99_ms']:.3f} ms")  # fmt: skip
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
    lines += runbook.lines(results.get("runbook"))  # recall per step while the data changed
    lines += ingest.lines(results.get("ingest"))  # ack -> searchable -> indexed
    for key, rel in sorted(((results.get("retrieval") or {}).get("relevance") or {}).items()):
        recall, ndcg = rel.get("relevance_recall") or {}, rel.get("ndcg@10") or {}
        if recall.get("count") or ndcg.get("count"):  # against the corpus's qrels (the retrieval layers' searches)
            lines.append(f"relevance {key}: recall@k {recall.get('mean', 0.0):.4f}, NDCG@10 "
                         f"{ndcg.get('mean', 0.0):.4f} over {max(recall.get('count', 0), ndcg.get('count', 0))} "
                         "queries")  # fmt: skip
    return lines
