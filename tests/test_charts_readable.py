"""Every chart loadgen writes, at its real size, read as a person reads it: no tick label over another (the compare
chart once printed "pymilvuspymilvus..."), no "6x10^-1" notation, every label inside the picture. No server: the
charts are built from figures of the shape the commands produce."""

from __future__ import annotations

import itertools
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from loadgen.cli import compare, modes
from loadgen.report import plots

LAYER_OPS = [
    *[("pymilvus", op) for op in ("insert", "search", "delete")],
    *[("langchain", op) for op in ("add", "search", "delete")],
    *[("llamaindex", op) for op in ("add", "query")],
]


def problems(fig: Any) -> list[str]:
    """What a reader trips on: tick labels on top of each other, scientific notation, text outside the picture."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    picture = fig.bbox
    found = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            ticks = zip(axis.get_majorticklocs(), axis.get_ticklabels(), strict=False)
            # the labels drawn: those of ticks inside the axis's range (matplotlib keeps a spare one either side)
            labels = [t for loc, t in ticks if t.get_visible() and t.get_text() and low - 1e-9 <= loc <= high + 1e-9]
            for t in labels:
                text = t.get_text()
                if "times" in text or "^" in text or "e-" in text or "e+" in text:
                    found.append(f"{ax.get_title()!r}: tick label {text!r} in scientific notation")
                box = t.get_window_extent(renderer)
                if box.x0 < picture.x0 - 1 or box.x1 > picture.x1 + 1 or box.y0 < picture.y0 - 1:
                    found.append(f"{ax.get_title()!r}: tick label {text!r} outside the picture")
            for a, b in itertools.combinations(labels, 2):
                if a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer)):
                    found.append(f"{ax.get_title()!r}: tick labels {a.get_text()!r} and {b.get_text()!r} overlap")
    return found


def test_compare_chart() -> None:
    rows = [compare.Row(layer, op, n, 0.002 * n * (i + 1), 0.0007 * n * (i + 2), 0, 0, "Bounded")
            for n in (10, 100, 1000) for i, (layer, op) in enumerate(LAYER_OPS)]  # fmt: skip
    fig = compare.figure(rows)
    assert problems(fig) == []
    assert fig.get_figwidth() * 100 <= 2000  # three panels still fit a screen at 100 dpi
    plt.close(fig)


def test_compare_chart_before_this_fix_would_fail() -> None:
    """The check itself catches what the old chart did: labels side by side under narrow bars, a log axis."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    xs = range(len(LAYER_OPS))
    ax.bar(list(xs), [0.01 * (i + 1) for i in xs], 0.4)
    ax.set_xticks(list(xs), [f"{layer}\n{op}" for layer, op in LAYER_OPS], fontsize=8)
    ax.set_yscale("log")
    found = problems(fig)
    assert any("overlap" in p for p in found) and any("scientific" in p for p in found), found
    plt.close(fig)


def test_modes_chart() -> None:
    rows = [modes.ModeRow(m, op, 200, 0, 3.0 + i, 2.5 + i, 6.0 + 2 * i, 0.9 - i / 20, 0.6 - i / 30)
            for i, (m, op) in enumerate(modes.MODES.items())]  # fmt: skip
    fig = modes.figure(rows)
    assert problems(fig) == []
    plt.close(fig)


@pytest.fixture
def report_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The report's figures as they are drawn (before they become PNGs)."""
    drawn: list[Any] = []

    def keep(fig: Any) -> str:
        fig.tight_layout()  # as _png lays it out before it saves
        drawn.append(fig)
        return "png"

    monkeypatch.setattr(plots, "_png", keep)
    return drawn


def test_report_charts(report_figures: list[Any]) -> None:
    curves = []
    for (t, name), kind in itertools.product([(f"pymilvus{s}", op) for s in ("", "-async")
                                             for op in ("search", "query", "insert")], ("users",)):  # fmt: skip
        levels = [{"level": u, "qps": 40.0 * u ** 0.8, "p50_ms": 3 + u / 10, "p99_ms": 12 + u, "error_rate": 0.001 * u,
                   "recall": 0.95 - u / 1000} for u in (1, 5, 10, 20, 50)]  # fmt: skip
        curves.append({"layer": "pymilvus", "kind": kind, "type": t, "name": name, "processes": 1, "replicas": 0,
                       "levels": levels, "knee": 20})  # fmt: skip
    plots.layer_charts({"curves": curves, "slo_p99_ms": 40.0})
    ops = [f"{layer} {op}" for layer, op in LAYER_OPS]
    plots.sync_async_chart([{"layer": o.split()[0], "operation": o.split()[1], "sync_qps": 10.0, "async_qps": 30.0}
                            for o in ops])  # fmt: skip
    plots.diff_chart([{"operation": o, "level": lv, "baseline": {"qps": 10.0}, "candidate": {"qps": 12.0}}
                      for o in ops for lv in (100, 600)])  # fmt: skip
    plots.time_split_chart([{"type": t, "name": n, "level": lv, "server_mean_ms": 2.0, "client_mean_ms": 3.5,
                             "client_p99_ms": 9.0, "server_p99_ms": 6.0}
                            for t, n in LAYER_OPS for lv in (2, 6)])  # fmt: skip
    plots.scaling_chart({"pymilvus search": [{"count": c, "efficiency": 1 - c / 20} for c in (1, 2, 4, 8)]}, "workers")
    assert len(report_figures) == 8  # QPS, latency, errors, recall; sync/async, diff, time split, scaling
    for fig in report_figures:
        assert problems(fig) == [], fig.axes[0].get_title()
        plt.close(fig)
