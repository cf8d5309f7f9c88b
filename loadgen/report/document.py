"""The report's content once, as sections of text and tables; ``markdown.py`` and ``html.py`` only lay it out."""

from __future__ import annotations

from typing import Any

from loadgen.report import coldwarm
from loadgen.stats import rounds
from loadgen.stats.page import Section

__all__ = ["Section", "sections"]


def _f(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "" if value is None else f"{value:.{digits}f}{suffix}"


def _signed(value: float | None, suffix: str = "%") -> str:
    return "" if value is None else f"{value:+.1f}{suffix}"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def _level(kind: str, level: float) -> str:
    units = {"rate": "req/s", "insert-rate": "inserts/s"}
    return f"{level:g} {units.get(kind, 'users')}"


def _curves_section(layer: str, curves: list[dict[str, Any]], slo: float | None) -> Section:
    sec = Section(f"Client layer: {layer}", charts=[f"layer:{layer}"])
    summary = []
    for c in curves:
        knee = _level(c["kind"], c["knee"]) if c["knee"] is not None else "none found (needs 3+ levels and a bend)"
        if slo is None:
            held = "no --slo-p99-ms given"
        elif c["slo"]:
            held = f"{c['slo']['qps']:.1f} req/s at {_level(c['kind'], c['slo']['level'])}"
        else:
            held = "no level held it"
        summary.append((f"{c['type']} {c['name']}", str(c["processes"]), str(c["replicas"] or ""),
                        _f(c["peak_qps"]), knee, held))  # fmt: skip
    slo_head = f"best QPS with p99 <= {slo:g} ms" if slo is not None else "best QPS within SLO"
    sec.tables.append((("operation", "workers", "replicas", "peak QPS", "knee", slo_head), summary))
    rows: list[tuple[str, ...]] = [
        (f"{c['type']} {c['name']}", _level(c["kind"], lv["level"]), str(lv["processes"]), _round(lv, "qps", 1),
         _round(lv, "p50_ms", 2), _round(lv, "p95_ms", 2), _round(lv, "p99_ms", 2), _f(100 * lv["error_rate"], 2, "%"),
         _f(lv["recall"], 4), "" if lv["late"] is None else f"{lv['late']} / {lv['dropped']}", _driver(lv))
        for c in curves
        for lv in c["levels"]
    ]  # fmt: skip
    header: tuple[str, ...] = ("operation", "level", "workers", "QPS", "p50 ms", "p95 ms", "p99 ms", "errors",
                               "recall", "late / dropped sends", "driver")  # fmt: skip
    levels = [lv for c in curves for lv in c["levels"]]
    if any(lv.get("qvps") is not None or lv.get("response_bytes_per_call") is not None for lv in levels):
        # a search's shape (--nq, --output-fields) beside its latency: query vectors/s, the answers' bytes per call
        at = header.index("p99 ms") + 1
        header = (*header[:at], "query vectors/s", "bytes/call", *header[at:])
        rows = [(*r[:at], _f(lv.get("qvps")), _f(lv.get("response_bytes_per_call"), 0), *r[at:])
                for r, lv in zip(rows, levels, strict=True)]  # fmt: skip
    sec.tables.append((header, rows))
    if any(lv.get("rounds", 1) > 1 for c in curves for lv in c["levels"]):
        sec.text.append(
            "With --rounds, each figure is the median of its rounds; the lowest and highest round are in "
            "brackets (the levels ran interleaved, so a drift touched every level alike)."
        )
    return sec


def _round(level: dict[str, Any], figure: str, digits: int) -> str:
    return rounds.cell(level[figure], (level.get("spread") or {}).get(figure), digits)


def _driver(level: dict[str, Any]) -> str:
    """How the level's calls waited (``--driver``); a level that ran differently from the others says so."""
    driver = str(level.get("driver") or "")
    return f"{driver} (differs from the other levels)" if level.get("driver_differs") else driver


def sections(report: dict[str, Any]) -> list[Section]:
    a = report["analysis"]
    ds = report["dataset"]
    intro = Section(
        "Inputs",
        [
            f"{len(report['inputs'])} input(s), {report['runs']} measured level(s): " + ", ".join(report["inputs"]),
            "Dataset: " + ", ".join(f"{k} {v}" for k, v in ds.items()),
            "QPS counts each Milvus call; fan-out batches (`*-batch`) and embedding time are left out. "
            "The knee is where throughput stops growing in step with load (largest bend away from the straight line).",
            "Driver: how each level's calls waited (`--driver`: greenlet, thread or loop); a level that ran on another "
            "driver than the rest of its curve is marked.",
        ],
    )
    intro.text += [line[0].upper() + line[1:] for line in report.get("warmup") or []]  # what the figures leave out
    out = [intro]
    layers = sorted({c["layer"] for c in a["curves"]})
    for layer in layers:
        out.append(_curves_section(layer, [c for c in a["curves"] if c["layer"] == layer], a["slo_p99_ms"]))
    sva = Section("Sync vs async", charts=["sync_async"])
    if a["sync_vs_async"]:
        sva.tables.append((
            ("layer", "operation", "level", "sync QPS", "async QPS", "async/sync", "sync p99 ms", "async p99 ms"),
            [(r["layer"], r["operation"], _level(r["kind"], r["level"]), _f(r["sync_qps"]), _f(r["async_qps"]),
              _f(r["qps_ratio"], 2, "x"), _f(r["sync_p99_ms"], 2), _f(r["async_p99_ms"], 2))
             for r in a["sync_vs_async"]],
        ))  # fmt: skip
    else:
        sva.text.append("No level ran both flavours of an operation (e.g. `pymilvus` and `pymilvus-async`).")
    out.append(sva)
    for what, key in (("Locust worker processes", "worker_scaling"), ("Milvus replicas", "replica_scaling")):
        sec = Section(f"Scaling with {what}", charts=[key])
        if a[key]:
            sec.tables.append((
                ("operation", "count", "peak QPS", "speedup", "efficiency"),
                [(op, f"{r['count']:g}", _f(r["peak_qps"]), _f(r["speedup"], 2, "x"), _f(100 * r["efficiency"], 0, "%"))
                 for op, rs in sorted(a[key].items()) for r in rs],
            ))  # fmt: skip
        else:
            sec.text.append(f"Only one count of {what.lower()} among the inputs: nothing to compare.")
        out.append(sec)
    if report.get("time_split") is not None:  # server time against client time
        out.append(_time_split_section(report["time_split"]))
    if report.get("coldwarm"):  # loadgen coldwarm: the first searches after a load and a restart
        out.append(Section("Cold and warm", coldwarm.text(report["coldwarm"]), [coldwarm.table(report["coldwarm"])]))
    if report.get("sizing"):
        out.append(_sizing_section(report["sizing"]))
    if report.get("cost"):
        out.append(_cost_section(report["cost"]))
    if report.get("diff"):
        out.append(_diff_section(report["diff"]))
    out += [_runbook_section(rb) for rb in report.get("runbooks", [])]
    if report.get("ingest"):
        out.append(_ingest_section(report["ingest"]))
    return out


def _ingest_section(runs: list[dict[str, Any]]) -> Section:
    """Ingest readiness per run (the figures: ``loadgen.stats.ingest``)."""
    sec = Section("Ingest readiness")
    sec.text.append(
        "Milliseconds from the client's acknowledgement of an insert until a query at the run's consistency level "
        "returned its rows (searchable), then until describe_index counted them and they were searchable (indexed). "
        "Writes the run ended before are counted apart, not in the percentiles. Index lag: seconds since the oldest "
        "write the index did not cover yet was acknowledged."
    )
    rows = []
    for r in runs:
        for stage in ("searchable", "indexed"):
            p = r[stage]
            rows.append((r["input"], stage, str(r["writes"]), str(p["count"]), str(r[f"not_{stage}"]),
                         _f(p["p50_ms"]), _f(p["p99_ms"]), _f(p["max_ms"])))  # fmt: skip
    sec.tables.append((("run", "stage", "writes", "reached", "not reached", "p50 ms", "p99 ms", "max ms"), rows))
    sec.tables.append((
        ("run", "consistency", "index lag max s", "mean s", "max rows behind"),
        [(r["input"], r.get("consistency_level", ""), _f(r["index_lag"]["max_s"], 2), _f(r["index_lag"]["mean_s"], 2),
          str(r["index_lag"]["max_rows"])) for r in runs],
    ))  # fmt: skip
    return sec


def _runbook_section(rb: dict[str, Any]) -> Section:
    """A runbook's recall per step (the figures: ``loadgen.stats.runbook``)."""
    sec = Section(f"Recall while data changes ({rb['input']})")
    sec.text.append(
        f"Runbook {rb.get('source', '')}: {rb.get('queries')} queries per search step at k={rb.get('k')}, "
        f"consistency {rb.get('consistency_level')}. Each search step is scored against the exact top-k over the "
        "rows the collection holds after the steps before it; p10: a tenth of the queries scored at or below it."
    )
    rows = []
    for s in rb["steps"]:
        r = s.get("recall") or {}
        changed = s.get("truth_changed")
        rows.append((str(s["step"]), s["label"], str(s["rows"]), _f(r.get("mean"), 4), _f(r.get("p10"), 4),
                     _f(r.get("min"), 4), "" if changed is None else _f(100 * changed, 0, "%")))  # fmt: skip
    total = rb.get("recall") or {}
    rows.append(("", "all searches", "", _f(total.get("mean"), 4), _f(total.get("p10"), 4), _f(total.get("min"), 4),
                 ""))  # fmt: skip
    sec.tables.append((("step", "operation", "rows held", "recall mean", "p10", "min", "truth changed"), rows))
    return sec


def _sizing_section(s: dict[str, Any]) -> Section:
    m = s["memory"]
    sec = Section(
        f"Sizing for {s['target_qps']:g} QPS",
        [
            f"Target {s['target_qps']:g} QPS over {s['vectors']:,} vectors of dim {s['dim']}, index {m['index']}, "
            f"headroom {s['headroom']:.0%} (replicas run at most at {1 - s['headroom']:.0%} of measured capacity).",
            f"Memory per replica: {_bytes(m['bytes_per_replica'])} = {m['formula']}. Source: {m['source']}.",
            *([f"Assumption: {m['assumption']}."] if m["assumption"] else []),
            *(f"Note: {n}." for n in s["notes"]),
            *(f"Not sized: {n}." for n in s["not_sized"]),
        ],
    )
    sec.tables.append((
        ("operation", "basis", "per-replica QPS", "efficiency", "replicas / query nodes", "capacity QPS",
         "memory total", "assumptions"),
        [(r["operation"], r["basis"], _f(r["per_replica_qps"]), f"{r['efficiency']:.0%} ({r['efficiency_basis']})",
          str(r["replicas"]), _f(r["capacity_qps"]), _bytes(r["memory_bytes_total"]), "; ".join(r["assumptions"]))
         for r in s["rows"]],
    ))  # fmt: skip
    sec.tables.append((
        ("index", "memory per replica", "formula"),
        [(x["index"], _bytes(x["bytes_per_replica"]), x["formula"]) for x in s["memory_other_indexes"]],
    ))  # fmt: skip
    if g := s.get("generator"):
        sec.text.append(
            f"Load generator: {g['processes']} worker process(es) in {g['pods']} pod(s) of {g['pod_cpu']:g} CPU "
            f"({g['cpu_us_per_call']:g} us of client CPU per call, {g['qps_per_process']:,.0f} QPS per process "
            f"at {1 - g['headroom']:.0%} of its core): {g['formula']}."
        )
    return sec


def _cost_section(c: dict[str, Any]) -> Section:
    p, cur = c["inputs"], c["inputs"]["currency"]
    given = f"{p['node_hour']:g} {cur} per Milvus node per hour, the measured configuration on {p['nodes']} node(s)"
    if p["generator_hour"] is not None:
        given += f"; load generator pods at {p['generator_hour']:g} {cur}/h ({p['generators']} in the run)"
    sec = Section("Cost", [
        f"Prices given: {given}. Cost per million queries = nodes x price per hour / (QPS x 3,600) x 1,000,000; "
        f"QPS per {cur}/h = QPS / (nodes x price per hour). The generator's pods are the test's cost, not the app's.",
    ])  # fmt: skip
    kinds = (("SLO-held, measured", "measured"), ("target, sized", "sizing"))
    rows = [(x["operation"], what, str(x["nodes"]), _f(x["qps"]), _f(x["serving_per_hour"], 4),
             _f(x["per_million_queries"], 4), _f(x["qps_per_dollar_hour"], 1))
            for what, key in kinds for x in c[key]]  # fmt: skip
    if rows:
        sec.tables.append((("operation", "rate", "nodes", "QPS", f"{cur}/h", f"{cur} per million queries",
                            f"QPS per {cur}/h"), rows))  # fmt: skip
    else:
        sec.text.append("No operation held an SLO (pass --slo-p99-ms) and nothing was sized (--target-qps).")
    return sec


def _spread(row: dict[str, Any], side: str, figure: str, digits: int) -> str:
    """A diff row's figure, with the lowest and highest round when the side ran --rounds."""
    spread = (row.get("spread") or {}).get(side) or {}
    return rounds.cell(row[side][figure], spread.get(figure), digits)


def _noise(row: dict[str, Any], figure: str, delta: str) -> str:
    """A delta, marked when it lies inside the rounds' spread: a change this run-to-run noise already makes."""
    inside = (row.get("within_spread") or {}).get(figure)
    return f"{delta} (within spread)" if inside else delta


def _noise_note(rows: list[dict[str, Any]]) -> str:
    judged = [r for r in rows if any(v is not None for v in (r.get("within_spread") or {}).values())]
    if not judged:
        return (
            "Each side ran each level once: how far a figure moves between two runs of the same setup is unknown "
            "here, so a delta may be noise. Sweep both with --rounds 3 to have the report tell."
        )
    inside = sum(1 for r in judged if (r.get("within_spread") or {}).get("p99"))
    return (
        f"Figures with a range are medians of rounds (lowest-highest round in brackets); a delta marked "
        f"'within spread' lies inside what repeating the run already moved: {inside} of {len(judged)} p99 "
        f"delta(s) here."
    )


def _diff_section(d: dict[str, Any]) -> Section:
    sec = Section(
        "Baseline vs candidate",
        [
            "Baseline: " + ", ".join(d["baseline"]),
            "Candidate: " + ", ".join(d["candidate"]),
            f"Matched by operation and level; {d['only_in_baseline']} point(s) only in the baseline, "
            f"{d['only_in_candidate']} only in the candidate.",
            _noise_note(d["rows"]),
        ],
        charts=["diff"],
    )
    header: tuple[str, ...] = ("operation", "level", "QPS before", "QPS after", "QPS delta", "p99 before",
                               "p99 after", "p99 delta", "errors delta", "recall delta")  # fmt: skip
    rows: list[tuple[str, ...]] = [
        (r["operation"], _level(r["kind"], r["level"]), _spread(r, "baseline", "qps", 1),
         _spread(r, "candidate", "qps", 1), _noise(r, "qps", _signed(r["delta"]["qps_pct"])),
         _spread(r, "baseline", "p99_ms", 2), _spread(r, "candidate", "p99_ms", 2),
         _noise(r, "p99", _signed(r["delta"]["p99_pct"])), _signed(r["delta"]["error_rate_pp"], " pp"),
         _signed(r["delta"]["recall"], ""))
        for r in d["rows"]
    ]  # fmt: skip
    sides = [(r.get("baseline", {}), r.get("candidate", {}), r.get("delta", {})) for r in d["rows"]]
    if any(a.get("response_bytes_per_call") is not None or b.get("response_bytes_per_call") is not None
           for a, b, _ in sides):  # fmt: skip
        # a search's shape (--nq, --output-fields): what the answers weighed, and the query vectors' rate
        header = (*header, "bytes/call before", "bytes/call after", "query vectors/s delta")
        rows = [(*row, _f(a.get("response_bytes_per_call"), 0), _f(b.get("response_bytes_per_call"), 0),
                 _signed(delta.get("qvps_pct"))) for row, (a, b, delta) in zip(rows, sides, strict=True)]  # fmt: skip
    sec.tables.append((header, rows))
    return sec


def _time_split_section(t: dict[str, Any]) -> Section:
    sec = Section(
        "Where the time goes",
        [
            "Per operation: Milvus's own time (its proxy latency histogram, scraped during the run) against the time "
            "the client saw; the difference is the client library, the generator and the network. The server cannot "
            "tell our rows apart: sync, async and fan-out rows of one Milvus function share its figure. Milvus 2.3.5 "
            "records whole milliseconds (truncated), in 1, 2, 4, 8... ms buckets: its mean reads low by up to 1 ms "
            "and its percentiles are interpolated inside a bucket (`p99 <=`: the bound the histogram proves).",
        ],
        charts=["time_split"],
    )
    if not t["rows"]:
        sec.text.append("No input carries Milvus's own figures (results.json's server section): nothing to split.")
        return sec
    sec.tables.append((
        ("operation", "Milvus", "level", "client p50", "server p50", "client p99", "server p99", "p99 <=",
         "client mean", "server mean", "overhead mean", "overhead share", "calls client / server"),
        [(f"{r['type']} {r['name']}", r["function"], _level(r["kind"], r["level"]), _f(r["client_p50_ms"], 3),
          _f(r["server_p50_ms"], 3), _f(r["client_p99_ms"], 3), _f(r["server_p99_ms"], 3),
          f"{r['server_p99_le_ms']:g}", _f(r["client_mean_ms"], 3), _f(r["server_mean_ms"], 3),
          _f(r["overhead_mean_ms"], 3), _share(r["overhead_share"]), f"{r['client_calls']} / {r['server_calls']}")
         for r in t["rows"]],
    ))  # fmt: skip
    if t["all_levels"]:
        sec.tables.append((
            ("operation", "Milvus", "levels", "client mean ms", "server mean ms", "overhead mean ms", "overhead share"),
            [(f"{r['type']} {r['name']}", r["function"], str(r["levels"]), _f(r["client_mean_ms"], 3),
              _f(r["server_mean_ms"], 3), _f(r["overhead_mean_ms"], 3), _share(r["overhead_share"]))
             for r in t["all_levels"]],
        ))  # fmt: skip
    if t["without_server"]:
        levels = ", ".join(f"{w['source']} ({_level(w['kind'], w['level'])})" for w in t["without_server"])
        sec.text.append(f"Without Milvus's own figures (not split): {levels}.")
    sec.text.append("Times in ms. Open-model rows use the calls' own time (not counted from the intended send).")
    return sec


def _share(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"
