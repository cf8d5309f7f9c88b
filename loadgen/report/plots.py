"""The report's charts as base64 PNG strings (matplotlib's Agg backend: no display, nothing fetched by the page)."""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, and the report must embed its images

import matplotlib.pyplot as plt

# a layer can have a dozen operations (sync and async): 20 distinct colours so no two lines share one
plt.rcParams["axes.prop_cycle"] = plt.cycler(color=[plt.get_cmap("tab20")(i) for i in range(20)])
Chart = dict[str, str]  # {"title": ..., "png": base64}


def plain_numbers(axis: Any, unit: str = "") -> None:
    """Tick labels as plain numbers with a unit ("0.6 s", "20 ms"), never matplotlib's "6x10^-1": a log axis gets
    its major and minor ticks labelled the same way, and no offset text."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def text(value: float, _pos: int) -> str:
        digits = f"{value:.3g}"
        return f"{digits} {unit}".strip()

    axis.set_major_formatter(FuncFormatter(text))
    if axis.get_scale() == "log":
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(NullFormatter())


def _legend(ax: Any) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, never over the lines
    ax.grid(alpha=0.3)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)  # shown at its own size: 9 inches are 900 pixels
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _level_ticks(ax: Any, levels: list[float]) -> None:
    """Ticks at the levels that ran (users are whole numbers; a rate sweep's rates), not at 2.5 users."""
    distinct = sorted(set(levels))
    if 1 < len(distinct) <= 12:
        ax.set_xticks(distinct, [f"{x:g}" for x in distinct])


def _categories(n: int) -> Any:
    """A figure for one horizontal bar (group) per category: names on the left, never on top of each other."""
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * n))
    return fig, ax


def _label(c: dict[str, Any], many_setups: bool) -> str:
    label = f"{c['type']} {c['name']}"
    if many_setups:
        label += f" ({c['processes']}w" + (f", {c['replicas']}r" if c["replicas"] else "") + ")"
    return label


def _xlabel(kind: str) -> str:
    labels = {"rate": "target arrival rate (req/s)", "insert-rate": "insert stream (inserts/s)"}
    return labels.get(kind, "concurrent users")


def layer_charts(analysis: dict[str, Any]) -> dict[str, list[Chart]]:
    """Per client layer: QPS against load, latency percentiles against QPS, error rate per level, recall per level."""
    by_layer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in analysis["curves"]:
        by_layer[c["layer"]].append(c)
    setups = {(c["processes"], c["replicas"]) for c in analysis["curves"]}
    out: dict[str, list[Chart]] = {}
    for layer, cs in sorted(by_layer.items()):
        charts = []
        for kind in sorted({c["kind"] for c in cs}):
            kcs = [c for c in cs if c["kind"] == kind]
            fig, ax = plt.subplots(figsize=(9, 3.6))
            for c in kcs:
                xs = [lv["level"] for lv in c["levels"]]
                ax.plot(xs, [lv["qps"] for lv in c["levels"]], marker="o", label=_label(c, len(setups) > 1))
                if c["knee"] is not None:
                    ax.axvline(c["knee"], linestyle=":", color="grey")
            _level_ticks(ax, [lv["level"] for c in kcs for lv in c["levels"]])
            ax.set(xlabel=_xlabel(kind), ylabel="QPS (req/s)", title=f"{layer}: throughput vs load")
            _legend(ax)
            charts.append({"title": f"{layer}: QPS vs {_xlabel(kind)}", "png": _png(fig)})
        fig, ax = plt.subplots(figsize=(9, 3.6))
        for c in cs:
            qps = [lv["qps"] for lv in c["levels"]]
            line = ax.plot(qps, [lv["p99_ms"] for lv in c["levels"]], marker="o", label=f"{_label(c, False)} p99")
            ax.plot(qps, [lv["p50_ms"] for lv in c["levels"]], linestyle="--", color=line[0].get_color())
        if analysis["slo_p99_ms"] is not None:
            ax.axhline(analysis["slo_p99_ms"], color="red", linestyle=":", label="p99 SLO")
        ax.set(xlabel="QPS (req/s)", ylabel="latency (ms); dashed: p50", title=f"{layer}: latency vs throughput")
        _legend(ax)
        charts.append({"title": f"{layer}: latency percentiles vs QPS", "png": _png(fig)})
        fig, ax = plt.subplots(figsize=(9, 3))
        for c in cs:
            ax.plot([lv["level"] for lv in c["levels"]], [100 * lv["error_rate"] for lv in c["levels"]], marker="o",
                    label=_label(c, False))  # fmt: skip
        _level_ticks(ax, [lv["level"] for c in cs for lv in c["levels"]])
        ax.set(xlabel="level", ylabel="errors (%)", title=f"{layer}: error rate per level")
        ax.set_ylim(bottom=0)
        _legend(ax)
        charts.append({"title": f"{layer}: error rate per level", "png": _png(fig)})
        with_recall = [c for c in cs if any(lv["recall"] is not None for lv in c["levels"])]
        if with_recall:
            fig, ax = plt.subplots(figsize=(9, 3))
            for c in with_recall:
                lvls = [lv for lv in c["levels"] if lv["recall"] is not None]
                ax.plot([lv["level"] for lv in lvls], [lv["recall"] for lv in lvls], marker="o", label=_label(c, False))
            _level_ticks(ax, [lv["level"] for c in with_recall for lv in c["levels"]])
            ax.set(xlabel="level", ylabel="mean recall@k", title=f"{layer}: recall per level")
            _legend(ax)
            charts.append({"title": f"{layer}: recall per level", "png": _png(fig)})
        out[layer] = charts
    return out


def sync_async_chart(rows: list[dict[str, Any]]) -> Chart | None:
    """Best QPS of each operation, sync next to async, at the levels where both ran."""
    if not rows:
        return None
    best: dict[str, tuple[float, float]] = {}
    for r in rows:
        key = f"{r['layer']} {r['operation']}"
        s, a = best.get(key, (0.0, 0.0))
        best[key] = (max(s, r["sync_qps"]), max(a, r["async_qps"]))
    names = sorted(best, reverse=True)  # alphabetical, top down
    fig, ax = _categories(len(names))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [best[n][0] for n in names], height=0.4, label="sync")
    ax.barh([y - 0.2 for y in ys], [best[n][1] for n in names], height=0.4, label="async")
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.set(xlabel="best QPS (req/s)", title="sync vs async")
    _legend(ax)
    return {"title": "sync vs async: best QPS per operation", "png": _png(fig)}


def scaling_chart(tables: dict[str, list[dict[str, float]]], what: str) -> Chart | None:
    if not tables:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for key, rows in sorted(tables.items()):
        ax.plot([r["count"] for r in rows], [r["efficiency"] for r in rows], marker="o", label=key)
    _level_ticks(ax, [r["count"] for rows in tables.values() for r in rows])
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set(xlabel=what, ylabel="scaling efficiency", title=f"scaling with {what}")
    _legend(ax)
    return {"title": f"scaling efficiency with {what}", "png": _png(fig)}


def diff_chart(rows: list[dict[str, Any]]) -> Chart | None:
    """Baseline against candidate QPS per operation and level."""
    if not rows:
        return None
    rows = rows[::-1]  # the table's order, top down
    names = [f"{r['operation']} @{r['level']:g}" for r in rows]
    fig, ax = _categories(len(names))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [r["baseline"]["qps"] for r in rows], height=0.4, label="baseline")
    ax.barh([y - 0.2 for y in ys], [r["candidate"]["qps"] for r in rows], height=0.4, label="candidate")
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.set(xlabel="QPS (req/s)", title="baseline vs candidate")
    _legend(ax)
    return {"title": "baseline vs candidate QPS", "png": _png(fig)}


def time_split_chart(rows: list[dict[str, Any]]) -> Chart | None:
    """Per operation and level: the client's mean time as Milvus's share plus the overhead's, stacked."""
    if not rows:
        return None
    rows = rows[::-1]  # the table's order, top down
    names = [f"{r['type']} {r['name']} @{r['level']:g}" for r in rows]
    fig, ax = _categories(len(names))
    ys = list(range(len(names)))
    server = [max(r["server_mean_ms"], 0.0) for r in rows]
    ax.barh(ys, server, height=0.6, label="Milvus (server mean)")
    ax.barh(ys, [r["client_mean_ms"] - s for r, s in zip(rows, server, strict=True)], height=0.6, left=server,
            label="client + network (overhead mean)")  # fmt: skip
    ax.plot([r["client_p99_ms"] for r in rows], ys, "k|", markersize=12, label="client p99")
    ax.plot([r["server_p99_ms"] for r in rows], ys, "r|", markersize=12, label="server p99")
    ax.set_yticks(ys, names, fontsize=8)
    ax.set(xlabel="ms per call", title="where the time goes")
    _legend(ax)
    return {"title": "where the time goes: server time and client overhead per call", "png": _png(fig)}
