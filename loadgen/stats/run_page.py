"""A run's report.html, built from its results document (``loadgen.stats.results.build``) as results.json is: every
figure on the page is the document's, in the summary's units (ms to the microsecond, from the HDR histograms), so the
page, results.json, the summary and the checks read the same. Written beside results.json by
``loadgen.locust.hooks.write_results`` for every run (headless, ``--processes``, the web UI's, a run stopped by a
signal, which the page says) and served live by the web UI's ``/loadgen/report.html``.

Store calls are one table with their TOTAL (``figures.totals``); a flow's row times calls that are rows already, so
flows have a table of their own, with their steps. Locust's own report (its charts over time, its rounded
percentiles), when the run wrote one, is linked, not copied. Settings leave only as the document holds them
(``Settings.public()``, the URI redacted): no secret is in the document, so none is on the page.
"""

from __future__ import annotations

import json
from typing import Any

from loadgen.stats import client_server, drivers, figures, flows, ingest, page, results
from loadgen.stats.page import Section

TITLE = "milvus-loadgen run"
_LATENCY = (("avg_ms", "avg"), ("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9"),
            ("max_ms", "max"))  # fmt: skip
ROW_HEADER = ("type", "name", "requests", "failures", "req/s", *(f"{title} ms" for _, title in _LATENCY))


def _ms(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, int | float) else ""


def _row(m: dict[str, Any]) -> tuple[str, ...]:
    """One request row in the summary's units: counts, req/s over the run's window, latencies of successes in ms."""
    return (str(m["type"]), str(m["name"]), str(m["requests"]), str(m["failures"]), f"{m['rps']:.1f}",
            *(_ms(m.get(key)) for key, _ in _LATENCY))  # fmt: skip


def _store_calls(doc: dict[str, Any]) -> Section:
    rows = [m for m in doc.get("requests", []) if not figures.is_flow(m)]
    recall = {k: v for k, v in (doc.get("recall") or {}).items() if isinstance(v, dict)}
    ran = drivers.by_type(doc.get("run", {}).get("drivers") or [])
    qvps = any("qvps" in m for m in rows)  # a search's shape (loadgen.stats.shape), where a row has it
    sized = any("response_bytes_per_call" in m for m in rows)
    extra = [("query vectors/s", lambda m: f"{m['qvps']:.1f}" if "qvps" in m else "") if qvps else None,
             ("bytes/call", lambda m: f"{m['response_bytes_per_call']:.0f}" if "response_bytes_per_call" in m
              else "") if sized else None,
             ("recall", lambda m: _recall(recall.get(f"{m['type']} {m['name']}"))) if recall else None,
             ("driver", lambda m: ran.get(str(m["type"]), "")) if ran else None]  # fmt: skip
    columns = [c for c in extra if c is not None]
    header = (*ROW_HEADER, *(name for name, _ in columns))
    body = [(*_row(m), *(value(m) for _, value in columns)) for m in rows]
    t = doc.get("totals", {})
    total = ["", "TOTAL", str(t.get("requests", 0)), str(t.get("failures", 0)), f"{t.get('qps', 0.0):.1f}",
             *([""] * (len(header) - 5))]  # fmt: skip
    if qvps and "qvps" in t:
        total[header.index("query vectors/s")] = f"{t['qvps']:.1f}"
    body.append(tuple(total))
    return Section(
        "Store calls",
        [
            "One row per store call of a layer (sync, async, async fan-out). Latencies are of the successful calls, "
            "in ms to the microsecond, from loadgen's HDR histograms merged from every worker; req/s is over the "
            "run's window; TOTAL counts store calls only (a flow's row is in Flows below). Recall: mean recall@k "
            "against the ground truth, where the row measured it (per query vector). With --nq: query vectors/s over "
            "the same window, and bytes/call, the mean size of a search's answer (loadgen.stats.shape).",
        ],
        tables=[(header, body)],
        total_rows=1,
        anchor="store-calls",
    )


def _recall(entry: dict[str, Any] | None) -> str:
    return f"{entry['mean']:.4f}" if entry and isinstance(entry.get("mean"), int | float) else ""


def _flows(doc: dict[str, Any]) -> Section | None:
    rows = [m for m in doc.get("requests", []) if figures.is_flow(m)]
    steps = doc.get("flows") or {}
    if not rows and not steps:
        return None
    sec = Section(
        "Flows",
        [
            "A flow's row times the whole block of a user's flow (the store calls inside it are rows of Store calls "
            "above, so flows are never added to their TOTAL); its steps say where the time goes, each the time since "
            "the previous mark, adding up to the flow.",
            *flows.render_lines(steps),
        ],
        anchor="flows",
    )
    if rows:
        sec.tables.append((ROW_HEADER, [_row(m) for m in rows]))
    step_rows = [
        (flow, str(s["step"]), str(s["count"]), _ms(s["mean_ms"]), _ms(s["p50_ms"]), _ms(s["p99_ms"]),
         f"{100 * s['share']:.1f}%")
        for flow, entry in sorted(steps.items())
        for s in entry.get("steps", [])
    ]  # fmt: skip
    if step_rows:
        sec.tables.append((("flow", "step", "count", "mean ms", "p50 ms", "p99 ms", "share of the flow"), step_rows))
    return sec


def _recall_section(doc: dict[str, Any]) -> Section | None:
    recall = {k: v for k, v in (doc.get("recall") or {}).items() if isinstance(v, dict)}
    if not recall:
        return None
    qs = ("p50", "p10", "p5", "p1", "min")
    rows = [(key, f"{e.get('mean', 0.0):.4f}", *(f"{e[q]:.4f}" if q in e else "" for q in qs),
             str(e.get("count", ""))) for key, e in sorted(recall.items())]  # fmt: skip
    text = [
        "Recall@k of each query vector searched (--nq of them per search, each against its own truth) against "
        "the exact top-k (the ground truth), per request row."
    ]
    header = ("request", "mean", *qs, "query vectors")
    return Section("Recall", text, tables=[(header, rows)], anchor="recall")


def _ingest(doc: dict[str, Any]) -> Section | None:
    """``--ingest-readiness``: each insert's ack -> searchable -> indexed (``loadgen.stats.ingest``)."""
    found = doc.get("ingest") or {}
    if not found.get("writes"):
        return None
    rows = [(stage, str(found["writes"]), str(found[stage]["count"]), str(found[f"not_{stage}"]),
             *(_ms(found[stage][q]) if found[stage]["count"] else "" for q in ("p50_ms", "p99_ms", "max_ms")))
            for stage in ingest.STAGES]  # fmt: skip
    lag = found["index_lag"]
    return Section(
        "Ingest readiness",
        [f"ms after each insert's acknowledgement ({found.get('consistency_level', '')}); index lag: max "
         f"{lag['max_s']:.2f} s, mean {lag['mean_s']:.2f} s, {lag['max_rows']} rows behind at most."],
        tables=[(("stage", "writes", "reached", "not reached", "p50 ms", "p99 ms", "max ms"), rows)],
        anchor="ingest",
    )  # fmt: skip


def _server(doc: dict[str, Any], server_function: client_server.ServerFunction) -> Section:
    section = doc.get("server") or {}
    sec = Section("Client vs server", anchor="server")
    if not section.get("available"):
        sec.text.append(
            "Milvus's own figures were not scraped for this run (--milvus-metrics-url; `loadgen run` sets it for its "
            "embedded Milvus): the time split is unknown."
        )
        return sec
    sec.text.append(
        f"Milvus's own time per function (its proxy's latency histogram, scraped from {section.get('source', '')}) "
        "beside the time the client saw for the same calls; the difference is the client library, the generator and "
        "the network. The server cannot tell our rows apart: the sync, async and fan-out rows of one function share "
        "its figure. Milvus 2.3.5 records whole milliseconds in 1, 2, 4, 8... ms buckets: its percentiles are "
        "interpolated inside a bucket (p99 <=: the bound the histogram proves)."
    )
    split = client_server.split(doc, server_function)
    if split:
        sec.tables.append((
            ("operation", "Milvus", "client p50", "server p50", "client p99", "server p99", "p99 <=", "client mean",
             "server mean", "overhead mean", "overhead share", "calls client / server"),
            [(f"{r['type']} {r['name']}", r["function"], _ms(r["client_p50_ms"]), _ms(r["server_p50_ms"]),
              _ms(r["client_p99_ms"]), _ms(r["server_p99_ms"]), f"{r['server_p99_le_ms']:g}",
              _ms(r["client_mean_ms"]), _ms(r["server_mean_ms"]), _ms(r["overhead_mean_ms"]),
              "" if r["overhead_share"] is None else f"{100 * r['overhead_share']:.0f}%",
              f"{r['client_calls']} / {r['server_calls']}") for r in split],
        ))  # fmt: skip
    else:
        sec.text.append("No row of this run calls a Milvus function the server measured.")
    proc = section.get("process") or {}
    if proc:
        cpu = f"{proc['cpu_cores']:.2f} cores" if "cpu_cores" in proc else "CPU not exposed"
        mem = f", {proc['rss_bytes_max'] / 2**20:.0f} MiB resident at most" if "rss_bytes_max" in proc else ""
        sec.text.append(f"Milvus process: {cpu}{mem} over {section.get('window_s', 0.0):.1f} s.")
    return sec


def _generator(doc: dict[str, Any]) -> Section:
    gen = doc.get("generator") or {}
    nodes = gen.get("nodes") or {}
    sec = Section("Load generator", anchor="generator")
    if not nodes:
        sec.text.append("The generator's own load was not measured for this run.")
        return sec
    sec.text.append(
        gen.get("line")
        or "Not saturated: the figures above measure Milvus and the client library, not a generator out of CPU."
    )
    rows = [
        (node, f"{n['cpu_share']:.2f}", f"{n['cpu_share_max']:.2f}", f"{n['wall_s']:.1f}",
         f"{n['hub_lag_ms']['mean']:.1f} / {n['hub_lag_ms']['max']:.1f}",
         f"{n['loop_lag_ms']['mean']:.1f} / {n['loop_lag_ms']['max']:.1f}",
         "yes: " + "; ".join(n["why"]) if n.get("saturated") else ("no" if n.get("judged") else "too short to judge"))
        for node, n in sorted(nodes.items())
    ]  # fmt: skip
    sec.tables.append((("process", "CPU (cores)", "CPU max", "seconds", "gevent hub lag mean / max ms",
                        "asyncio loop lag mean / max ms", "saturated"), rows))  # fmt: skip
    return sec


def _checks(doc: dict[str, Any]) -> Section:
    checks = doc.get("checks") or {}
    given = {k: v for k, v in (checks.get("set") or {}).items() if v is not None}
    failed = list(checks.get("failed") or [])
    sec = Section("Checks", anchor="checks")
    if not given:
        sec.text.append("No check was set (the --check-* options).")
    else:
        sec.text.append(f"{len(failed)} check(s) failed." if failed else "Every check passed.")
        limits = [(f"--check-{k.replace('_', '-')}", f"{v:g}") for k, v in given.items()]
        sec.tables.append((("check", "limit"), limits))
        sec.text += failed
    return sec


def _failures(doc: dict[str, Any]) -> Section | None:
    failures = doc.get("failures") or []
    if not failures:
        return None
    rows = [(str(f["type"]), str(f["name"]), str(f.get("kind") or results.failure_kind(str(f["error"]))),
             str(f["occurrences"]), str(f["error"])[:500]) for f in failures]  # fmt: skip
    return Section("Failures", tables=[(("type", "name", "kind", "count", "error"), rows)], anchor="failures")


def _key_values(heading: str, values: dict[str, Any]) -> Section:
    def text(v: Any) -> str:
        return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else str(v)

    return Section(heading, tables=[(("key", "value"), [(str(k), text(v)) for k, v in values.items()])])


def _run_time(run: dict[str, Any]) -> str:
    """``-t`` as given to ``loadgen run`` ("4s"), or as Locust parsed it (seconds); none: until stopped."""
    value = run.get("run_time")
    return f"{value:g} s" if isinstance(value, int | float) else str(value or "none (until stopped)")


def _intro(doc: dict[str, Any]) -> list[str]:
    run, t = doc.get("run", {}), doc.get("totals", {})
    model = f"open model at {run['arrival_rate']:g} req/s" if run.get("arrival_rate") else "closed model"
    named = run.get("classes") or sorted(drivers.by_class(run.get("drivers") or []))  # none given: those that ran
    classes = f" ({', '.join(named)})" if named else ""
    lines = [
        f"{run.get('state', '')}: {run.get('users', 0)} users{classes}, {model}, run time {_run_time(run)}; "
        f"{run.get('source', '')} run against {run.get('host', '')}"
        + (f", Milvus {run['server_version']}" if run.get("server_version") else "")
        + f"; generated {run.get('generated_at', '')}.",
        f"{t.get('requests', 0)} store calls, {t.get('failures', 0)} failed ({t.get('fail_ratio', 0.0):.2%}), "
        f"{t.get('qps', 0.0):.1f} req/s over {t.get('window_s', 0.0):.1f} s. Every figure is the run's results.json's "
        "(and the summary's): latencies of successful calls in ms to the microsecond (HDR histograms).",
    ]
    if ran := drivers.line(run.get("drivers") or []):
        lines.append(ran)
    if line := (doc.get("generator") or {}).get("line"):
        lines.append(line)
    failed = (doc.get("checks") or {}).get("failed") or []
    if failed:
        lines.append(f"{len(failed)} check(s) failed: " + "; ".join(failed))
    if run.get("error"):
        lines.append(f"loadgen: error: {run['error']}")
    return lines


def render(doc: dict[str, Any], *, server_function: client_server.ServerFunction, locust_report: str = "") -> str:
    """The run's report.html from its results document. ``locust_report``: the file name of Locust's own report
    beside it, linked for its charts over time (none in a web UI run: its tab has live charts)."""
    run = doc.get("run", {})
    why = str(run.get("partial") or "").removeprefix("partial: ")
    banner = f"Stopped early: {why}. The figures cover the run until then." if why else ""
    links = [("results.json", "results.json (these figures, in full)")]
    if locust_report:
        links.append((locust_report, "Locust's own report (charts over time)"))
    head = Section("Files", links=links)
    sections = [head, _store_calls(doc)]
    sections += [s for s in (_flows(doc), _recall_section(doc), _ingest(doc)) if s is not None]
    sections += [_server(doc, server_function), _generator(doc), _checks(doc)]
    if more := results.notes(doc):
        sections.append(Section("Other figures", more))
    sections += [s for s in (_failures(doc),) if s is not None]
    if locust_report:
        sections.append(Section(
            "Locust's own report",
            [f"{locust_report}: Locust's HTML report of the same run, for its charts over time (requests/s, response "
             "times, users). Its percentiles are Locust's, rounded to its whole-millisecond buckets, and its "
             "Aggregated row adds flow rows to the store calls inside them: the figures above are the run's."],
            links=[(locust_report, locust_report)],
        ))  # fmt: skip
    sections += [_key_values("Run", run), _key_values("Settings", doc.get("settings") or {})]
    title = f"{TITLE} (partial: stopped early)" if run.get("partial") else TITLE
    return page.render(title, _intro(doc), sections, banner=banner)
