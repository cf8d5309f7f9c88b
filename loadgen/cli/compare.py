"""``loadgen compare``: the seed tutorials' experiment on any Milvus.

For each client layer, count N and operation: the time of N sequential sync calls and of N concurrent async calls
(``asyncio.gather``), and the speedup. Each (layer, N) gets a fresh loadgen-owned collection, dropped afterwards.
Writes a terminal table, ``compare.json`` and ``compare.png``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from loadgen import clients
from loadgen.clients.base import Adapter, Operation
from loadgen.config import paths
from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.stats.timing import ameasure_gather, measure_sequence

# layer -> (label, adapter operation), in the order they run: writes first, so deletes remove what was added
EXPERIMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "pymilvus": (("insert", "insert"), ("search", "search"), ("delete", "delete")),
    "langchain": (("add", "add_texts"), ("search", "similarity_search"), ("delete", "delete")),
    "llamaindex": (("add", "add"), ("query", "query")),
}
PREFILL_ROWS = 200
Timed = tuple[float, list[BaseException | None]]  # total milliseconds, each call's error


@dataclass(frozen=True)
class Row:
    layer: str
    op: str
    n: int
    sync_s: float
    async_s: float
    sync_errors: int
    async_errors: int
    consistency_level: str

    @property
    def speedup(self) -> float:
        return self.sync_s / self.async_s if self.async_s else 0.0


def _first_error(errors: list[BaseException | None]) -> str:
    return next((f"{type(e).__name__}: {e}" for e in errors if e is not None), "")


def _calls(store: Any, op: Operation, inputs: list[tuple[Any, ...]], *, aio: bool) -> list[Any]:
    """One call per inputs: what the user would time (the library's call, then its outcome, which may fail it)."""

    def sync(args: tuple[Any, ...]) -> Any:
        return op.outcome(store, args, op.call(store, *args))

    async def asyn(args: tuple[Any, ...]) -> Any:
        return op.outcome(store, args, await op.async_call(store, *args))

    return [asyn(args) if aio else functools.partial(sync, args) for args in inputs]


def _phase_ops(adapter: Adapter, layer: str) -> list[tuple[str, Operation]]:
    return [(label, adapter.operations[name]) for label, name in EXPERIMENTS[layer]]


def _sync_phase(adapter: Adapter, layer: str, settings: Settings, n: int) -> dict[str, Timed]:
    store = adapter.open(settings, False)
    try:
        out = {}
        for label, op in _phase_ops(adapter, layer):
            inputs = [op.inputs(store) for _ in range(n)]
            out[label] = measure_sequence(_calls(store, op, inputs, aio=False))
            for args, err in zip(inputs, out[label][1], strict=True):
                if op.done is not None:
                    op.done(store, args, err is None)
        return out
    finally:
        adapter.close(store)


async def _async_phase(adapter: Adapter, layer: str, settings: Settings, n: int) -> dict[str, Timed]:
    # a plain asyncio program, as the tutorials run it: the store's sync constructor runs before the loop's work
    store = await asyncio.to_thread(adapter.open, settings, True)
    await adapter.attach(store)
    try:
        out = {}
        for label, op in _phase_ops(adapter, layer):
            inputs = [op.inputs(store) for _ in range(n)]
            out[label] = await ameasure_gather(_calls(store, op, inputs, aio=True))
            for args, err in zip(inputs, out[label][1], strict=True):
                if op.done is not None:
                    op.done(store, args, err is None)
        return out
    finally:
        await adapter.aclose(store)


def run_layer(layer: str, base: Settings, n: int, log: Any = print) -> list[Row]:
    adapter = clients.adapter(layer)
    weights = {name: 1 for _label, name in EXPERIMENTS[layer]}  # and nothing else (no ingest threads, ...)
    settings = replace(base, collection=f"{base.collection}_{layer}_{n}", rows=PREFILL_ROWS, batch_size=1,
                       weights=weights)  # fmt: skip
    adapter.prepare(replace(settings, recreate=True), progress=False)  # fresh, loadgen-owned
    try:
        sync = _sync_phase(adapter, layer, settings, n)
        aio = asyncio.run(_async_phase(adapter, layer, settings, n))
    finally:
        adapter.drop(settings)
    rows = []
    for label, _ in EXPERIMENTS[layer]:
        (s_ms, s_err), (a_ms, a_err) = sync[label], aio[label]
        row = Row(layer, label, n, s_ms / 1000, a_ms / 1000, sum(e is not None for e in s_err),
                  sum(e is not None for e in a_err), base.consistency_level)  # fmt: skip
        if row.sync_errors or row.async_errors:
            log(f"loadgen: {layer} {label} x{n}: {row.sync_errors} sync / {row.async_errors} async errors, "
                f"first: {_first_error(s_err) or _first_error(a_err)}")  # fmt: skip
        rows.append(row)
    return rows


def render(rows: list[Row]) -> str:
    header = ("layer", "op", "N", "sync s", "async s", "speedup", "errors")
    body = [(r.layer, r.op, str(r.n), f"{r.sync_s:.3f}", f"{r.async_s:.3f}", f"{r.speedup:.1f}x",
             f"{r.sync_errors}/{r.async_errors}") for r in rows]  # fmt: skip
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *body]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(rows)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figure(rows: list[Row]) -> Any:
    """compare.png: per N, the seconds of N sync calls one after another beside N async calls at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from loadgen.report.plots import plain_numbers

    counts = sorted({r.n for r in rows})
    most = max(sum(r.n == n for r in rows) for n in counts)
    # one row of bars per operation, its name on the left: names never run into each other however many there are
    fig, axes = plt.subplots(1, len(counts), figsize=(6.5 * len(counts), 1.6 + 0.55 * most), squeeze=False)
    for ax, n in zip(axes[0], counts, strict=True):
        sub = [r for r in rows if r.n == n][::-1]  # the table's order, top down
        ys = range(len(sub))
        ax.barh([y + 0.2 for y in ys], [r.sync_s for r in sub], 0.4, color="#1f77b4", label="sync, one after another")
        ax.barh([y - 0.2 for y in ys], [r.async_s for r in sub], 0.4, color="#ff7f0e", label="async, all at once")
        ax.set_yticks(list(ys), [f"{r.layer} {r.op}" for r in sub], fontsize=9)
        ax.set_xscale("log")
        plain_numbers(ax.xaxis, "s")
        for y, r in zip(ys, sub, strict=True):  # what async did to each pair, at its end
            said = f"async {r.speedup:.1f}x faster" if r.speedup >= 1 else f"async {1 / r.speedup:.1f}x slower"
            ax.annotate(said if r.speedup else "", (max(r.sync_s, r.async_s), y), xytext=(4, -4),
                        textcoords="offset points", fontsize=8)  # fmt: skip
        ax.set_xlim(right=ax.get_xlim()[1] * 4)  # room for the notes
        ax.set_xlabel(f"seconds for {n} calls (log scale)")
        ax.set_title(f"N = {n} calls, consistency {sub[0].consistency_level}" if sub else f"N = {n}")
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))  # the legend's line above the charts
    return fig


def compare(base: Settings, layers: list[str], counts: list[int], out: Path, log: Any = print) -> list[Row]:
    for layer in layers:
        if layer not in EXPERIMENTS:
            raise LoadgenError(f"compare: unknown layer {layer!r}; choose from {', '.join(EXPERIMENTS)}")
    rows: list[Row] = []
    for layer in layers:
        for n in counts:
            log(f"loadgen: compare {layer} N={n} ...")
            rows.extend(run_layer(layer, base, n, log))
    paths.make_dir(out)
    payload = {"settings": base.public(), "rows": [{**asdict(r), "speedup": r.speedup} for r in rows]}
    (out / "compare.json").write_text(json.dumps(payload, indent=2))
    chart(rows, out / "compare.png")
    return rows
