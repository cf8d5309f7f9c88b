"""The Vector DB tab's live charts: the series built from the tab's own figures (no browser), then the charts drawn in
real headless Chromium while `loadgen ui` runs an open-model test against the real embedded Milvus."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response
from pymilvus import MilvusClient
from test_webui import UI, _wait

from loadgen.milvus.server import ServerInfo
from loadgen.stats.histograms import LatencyHistograms
from loadgen.web import charts
from loadgen.web.table import rows_of


def _doc(p99: float = 2.5, recall: float = 0.91234, achieved: float = 19.5) -> dict[str, Any]:
    """A results document as ``hooks.current_results`` builds it, with a server section."""
    row = {"requests": 100, "failures": 0, "successes": 100, "rps": 10.0, "p50_ms": 1.25, "p95_ms": 2.0}
    return {
        "totals": {"requests": 300, "failures": 0, "fail_ratio": 0.0, "qps": 30.0, "window_s": 10.0},
        "requests": [
            {**row, "type": "pymilvus", "name": "search", "p99_ms": p99},
            {**row, "type": "pymilvus-async", "name": "search", "p50_ms": 1.5, "p99_ms": 3.0004},
            {**row, "type": "pymilvus-async-fanout", "name": "search", "p99_ms": 7.0},
            {**row, "type": "pymilvus", "name": "insert", "successes": 0, "failures": 100, "p99_ms": 0.0},
        ],
        "recall": {"pymilvus search": {"mean": recall, "count": 100}, "pymilvus-async search": {"mean": 0.8}},
        "open_loop": {"intended": 200, "target_rate": 20.0, "achieved_rate": achieved},
        "server": {"available": True, "operations": {"Search": {"latency": {"p99_ms": 1.8, "count": 300}}}},
    }


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return rows_of(SimpleNamespace(runner=None), SimpleNamespace(error=None), doc)


def test_a_point_holds_what_the_table_shows() -> None:
    doc = _doc()
    rows = _rows(doc)
    p = charts.point(doc, rows, at=1000.0)
    search = next(r for r in rows if (r["layer"], r["operation"]) == ("pymilvus", "search"))
    assert p["latency"]["pymilvus search"] == {
        "sync": {"p50_ms": search["sync_p50_ms"], "p99_ms": search["sync_p99_ms"]},
        "async": {"p50_ms": search["async_p50_ms"], "p99_ms": search["async_p99_ms"]},
    }
    assert p["latency"]["pymilvus search"]["async"]["p99_ms"] == 3.0  # the table's three decimals
    assert p["latency"]["pymilvus fan-out search"] == {"async": {"p50_ms": 1.25, "p99_ms": 7.0}}
    assert "pymilvus insert" not in p["latency"]  # no successful call: no percentile, as in the table
    assert p["recall"]["pymilvus search"] == {"sync": float(search["recall_sync"]), "async": 0.8}
    assert p["recall"]["pymilvus search"]["sync"] == 0.9123
    assert p["open_loop"] == {"target_rate": 20.0, "achieved_rate": 19.5}
    assert p["server"] == {
        "Search": {
            "server_p99_ms": 1.8,
            "client_p99_ms": {
                "pymilvus search": 2.5,
                "pymilvus-async search": 3.0,
                "pymilvus-async-fanout search": 7.0,
            },
            "rows": ["pymilvus fan-out search", "pymilvus search"],  # the table rows whose calls land there
        }
    }


def test_recent_recall_is_the_last_seconds_searches() -> None:
    seconds = {
        ("pymilvus", "search"): [[90, 10, 1.0], [96, 10, 0.5], [99, 30, 0.9], [100, 5, 0.2]],
        ("pymilvus-async", "search"): [[90, 4, 1.0]],  # nothing recent: no value rather than a stale one
    }
    doc = _doc()
    p = charts.point(doc, _rows(doc), at=100.4, recall_seconds=seconds)
    # seconds 96, 99 and 100 (within RECENT_S = 5 of 100.4): (10 * 0.5 + 30 * 0.9 + 5 * 0.2) / 45
    assert p["recall_recent"] == {"pymilvus search": {"sync": round(33 / 45, 4)}}
    assert charts.RECENT_S == 5
    assert "recall_recent" not in charts.point(doc, _rows(doc), at=100.4)


def test_sections_that_did_not_run_give_no_series() -> None:
    doc = {**_doc(), "open_loop": {}, "server": {"available": False}, "recall": {}}
    p = charts.point(doc, _rows(doc), at=5.0)
    assert p["recall"] == {} and "open_loop" not in p and "server" not in p


def test_history_adds_changes_only_and_starts_at_the_test() -> None:
    history = charts.ChartHistory(max_points=3)
    history.clear(start=100.0)
    doc = _doc()
    assert history.add(charts.point(doc, _rows(doc), at=101.0))
    assert not history.add(charts.point(doc, _rows(doc), at=103.0))  # same figures: an idle UI adds nothing
    for i, p99 in enumerate((4.0, 5.0, 6.0)):
        changed = _doc(p99=p99, recall=0.5 + i / 10, achieved=10.0 + i)
        assert history.add(charts.point(changed, _rows(changed), at=104.0 + i))
    out = history.document({"report": "./loadgen/report.html"})
    assert out["format"] == charts.FORMAT and out["links"] == {"report": "./loadgen/report.html"}
    assert [p["t"] for p in out["points"]] == [4.0, 5.0, 6.0]  # the oldest fell off; seconds since the test began
    assert charts.latest(out, "latency|pymilvus search|sync|p99_ms") == 6.0
    assert charts.latest(out, "recall|pymilvus search|sync") == 0.7
    assert charts.latest(out, "open_loop|achieved_rate") == 12.0
    assert charts.latest(out, "server|Search|pymilvus search") == 6.0
    assert charts.latest(out, "server|Search|server") == 1.8
    assert charts.latest(out, "latency|pymilvus nothing|sync|p99_ms") is None
    history.clear()
    assert history.document({})["points"] == [] and history.idle()


def test_series_names_cover_every_figure() -> None:
    doc = _doc()
    history = charts.ChartHistory()
    history.add(charts.point(doc, _rows(doc), at=1.0))
    names = charts.series_names(history.document({}))
    assert "latency|pymilvus search|async|p50_ms" in names and "recall|pymilvus-async search|async" not in names
    assert {"open_loop|target_rate", "open_loop|achieved_rate", "server|Search|server"} <= set(names)
    assert all(charts.latest(history.document({}), n) is not None for n in names)
    assert charts.SCRIPT.is_file() and (charts.VENDOR / "uPlot.iife.min.js").is_file()


# ---- windowed figures: the last WINDOW_S seconds, from the run's own histograms ----------------------------------


def test_window_figures_are_the_calls_of_the_last_seconds() -> None:
    """A spike in the last seconds shows in the window at once, while the run's p99 barely moves; the window's
    percentiles are exactly those of a histogram fed only the window's calls."""
    hist, recent = LatencyHistograms(), LatencyHistograms()
    doc = {"requests": [{"type": "pymilvus", "name": "search"}]}
    windows = charts.Windows()
    windows.clear(start=100.0)
    for _ in range(5000):
        hist.record("pymilvus", "search", 2.0)
    assert windows.figures(hist, doc, at=104.0)["pymilvus search"]["sync"] == {"rps": 1250.0, "p50_ms": 2.0,
                                                                                "p99_ms": 2.0}  # fmt: skip
    windows.figures(hist, doc, at=112.0)  # 8 s later, nothing new: the base moves on past the start
    for ms in (2.0,) * 150 + (90.0,) * 50:  # the spike: a quarter of the last seconds' calls take 90 ms
        hist.record("pymilvus", "search", ms)
        recent.record("pymilvus", "search", ms)
    w = windows.figures(hist, doc, at=116.0)["pymilvus search"]["sync"]
    expected = recent.percentiles("pymilvus", "search")
    assert (w["p50_ms"], w["p99_ms"]) == (round(expected["p50_ms"], 3), round(expected["p99_ms"], 3))
    assert w["p99_ms"] > 80 and hist.percentiles("pymilvus", "search")["p99_ms"] < 3  # the run's p99 misses it
    assert w["rps"] == round(200 / 12.0, 3)  # the calls since the point at 104 s (the newest >= 10 s before)
    later = windows.figures(hist, doc, at=130.0)["pymilvus search"]["sync"]
    assert later == {"rps": 0.0}  # nothing in the last seconds: a rate of 0 and no percentile


def test_a_point_carries_the_window() -> None:
    doc = _doc()
    window = {"pymilvus search": {"sync": {"rps": 5.0, "p50_ms": 1.0, "p99_ms": 9.0}}}
    p = charts.point(doc, _rows(doc), at=10.0, window=window)
    assert p["window"] == window
    history = charts.ChartHistory()
    history.add(p)
    served = history.document({})
    assert charts.latest(served, "window|pymilvus search|sync|p99_ms") == 9.0
    assert "window|pymilvus search|sync|rps" in charts.series_names(served)


# ---- the page's script on a stand-in page (no server: every request is answered by the test) ----------------------

_STAND_IN = """<!doctype html><html><body><div id="root"><div role="tablist"><button role="tab" aria-selected="true">
Vector DB</button></div><div class="MuiTableContainer-root" style="width:1300px"><table><tr><td>row</td></tr></table>
</div></div><script src="./loadgen/charts.js"></script></body></html>"""


def _served_history() -> dict[str, Any]:
    history = charts.ChartHistory()
    history.clear(start=100.0)
    for i in range(6):
        doc = _doc(p99=2.5 + i, recall=0.9 - i / 100, achieved=18.0 + i)
        seconds = {("pymilvus-async", "search"): [[101 + 2 * i, 10, 0.5 + i / 10]]}
        window = {"pymilvus search": {"sync": {"rps": 10.0 + i, "p50_ms": 1.0, "p99_ms": 4.0 + i},
                                      "async": {"rps": 9.0, "p50_ms": 1.5, "p99_ms": 3.0}},
                  "pymilvus insert": {"sync": {"rps": 2.0}}}  # fmt: skip
        history.add(charts.point(doc, _rows(doc), at=101.0 + 2 * i, recall_seconds=seconds, window=window))
    return history.document({"report of the current run": "./loadgen/report.html"})


def _stand_in(browser: Browser, served: dict[str, Any], status: dict[str, Any]) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    vendored = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}

    def answer(route: Any) -> None:
        url = route.request.url
        name = url.rsplit("/", 1)[-1]
        if url.endswith("/loadgen/charts.js"):
            route.fulfill(body=charts.SCRIPT.read_text(), content_type="text/javascript")
        elif "/loadgen/vendor/" in url and name in vendored:
            route.fulfill(body=(charts.VENDOR / name).read_bytes(), content_type=vendored[name])
        elif url.endswith("/loadgen/charts.json"):
            route.fulfill(body=json.dumps(served), content_type="application/json")
        elif url.endswith("/loadgen/status.json"):
            route.fulfill(body=json.dumps(status), content_type="application/json")
        else:
            route.fulfill(body=_STAND_IN, content_type="text/html")

    page.route("**/*", answer)
    page.goto("http://stand-in.invalid/")
    return page, errors


def _drawn(page: Page) -> dict[str, dict[str, Any]]:
    """Every series the page's charts hold, read off the uPlot instances: its latest value, points, x range."""
    return {s["name"]: s for s in page.evaluate("window.loadgenCharts.series()")}


def _for_row(served: dict[str, Any], row: str) -> set[str]:
    """The series the charts show for one table row: its own, the open model's, its Milvus function's."""
    fns = {fn for p in served["points"] for fn, e in p.get("server", {}).items() if row in e.get("rows", [])}
    return {n for n in charts.series_names(served) if n.split("|")[1] in (row, *fns) or n.startswith("open_loop|")}


def test_script_draws_the_chosen_rows_series_with_axes_tooltips_and_zoom(browser: Browser, tmp_path: Path) -> None:
    served = _served_history()
    page, errors = _stand_in(browser, served, {"phase": "", "preparing": None, "error": "", "results": ""})
    try:
        page.wait_for_function("window.loadgenCharts && window.loadgenCharts.series().length > 0")
        options = page.eval_on_selector_all("#loadgen-row option", "els => els.map(e => e.value)")
        assert options == ["pymilvus search", "pymilvus insert", "pymilvus fan-out search"], options
        for row in options:
            page.select_option("#loadgen-row", row)
            drawn = _drawn(page)
            assert set(drawn) == _for_row(served, row) and errors == [], (row, sorted(drawn))
            for name, line in drawn.items():  # what is plotted is the served figure, every point of it
                assert line["last"] == charts.latest(served, name), name
                assert line["count"] == sum(charts._lookup(p, name) is not None for p in served["points"]), name
        page.select_option("#loadgen-row", "pymilvus search")
        titles = page.eval_on_selector_all("#loadgen-charts [data-chart]", "els => els.map(e => e.dataset.chart)")
        assert titles == [
            "pymilvus search: latency, ms (solid: last 10 s; dashed: the run)",
            "pymilvus search: req/s, last 10 s",
            "pymilvus search: recall (solid: last 5 s; dashed: the run)",
            "open model: target vs achieved",
            "Milvus Search: client vs server p99, ms (the run)",
        ], titles
        assert page.locator("#loadgen-charts .u-axis").count() == 2 * len(titles)  # x and y axes on every chart
        assert page.get_attribute("#loadgen-charts a", "href") == "./loadgen/report.html"
        over = page.locator("#loadgen-charts .u-over").first
        box = over.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        tip = page.locator("#loadgen-charts .loadgen-tip").first
        assert tip.is_visible() and "sync p99, last 10 s" in tip.inner_text(), tip.inner_text()
        full = _drawn(page)["window|pymilvus search|sync|p99_ms"]["x"]
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
        page.mouse.up()
        zoomed = _drawn(page)["window|pymilvus search|sync|p99_ms"]
        assert zoomed["zoomed"] and full[0] < zoomed["x"][0] < zoomed["x"][1] < full[1], (full, zoomed)
        page.wait_for_timeout(2500)  # a poll redraws the charts: the zoom stays
        assert _drawn(page)["window|pymilvus search|sync|p99_ms"]["x"] == zoomed["x"]
        page.mouse.dblclick(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        assert not _drawn(page)["window|pymilvus search|sync|p99_ms"]["zoomed"]
        page.screenshot(path=str(tmp_path / "stand-in.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_status_line_shows_preparation_then_a_failed_start(browser: Browser) -> None:
    preparing = {"step": {"collection": "c", "what": "filling"}, "text": "filling c 2,000 of 10,000 rows (3 s)"}
    page, errors = _stand_in(browser, {"points": []}, {"phase": "preparing", "preparing": preparing, "error": ""})
    try:
        status = page.locator("#loadgen-status")
        status.wait_for()
        assert status.inner_text() == "loadgen: preparing the collections: filling c 2,000 of 10,000 rows (3 s)"
        assert status.get_attribute("data-phase") == "preparing"
    finally:
        page.close()
    failed = {"phase": "failed", "preparing": None, "error": "loadgen: error: --dim 8 does not match"}
    page, errors = _stand_in(browser, {"points": []}, failed)
    try:
        page.locator("#loadgen-status[data-phase=failed]").wait_for()
        assert page.locator("#loadgen-status").inner_text() == "loadgen: error: --dim 8 does not match"
        assert errors == []
    finally:
        page.close()


# ---- in the browser, against the real Milvus --------------------------------------------------------------------


@pytest.mark.milvus
@pytest.mark.slow
def test_charts_draw_the_tabs_figures_live(
    milvus: ServerInfo,
    client: MilvusClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    collection = f"lg_charts_{os.getpid()}"
    ui = UI(tmp_path, "--host", milvus.uri, "--milvus-metrics-url", milvus.metrics_url, "--rows", "300", "--dim", "8",
            "--collection", collection, "--groundtruth-cache", str(tmp_path / "gt"), "--dataset",
            "synthetic:clustered", "--arrival-rate", "30", "--weights", "search=1")  # fmt: skip
    fetched: list[dict[str, Any]] = []  # every charts.json the page's script fetched, in order
    tables: list[dict[str, Any]] = []  # every table answer the page got

    def note(r: Response) -> None:
        if r.ok and r.url.endswith("/loadgen/charts.json"):
            fetched.append(r.json())
        elif r.ok and r.url.endswith("/stats/requests"):
            tables.append(r.json())

    page: Page | None = None
    try:
        ui.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.on("response", note)
        page.goto(ui.url + "/")
        for name in ("LangChainUser", "AsyncLangChainUser", "LlamaIndexUser", "AsyncLlamaIndexUser"):
            page.get_by_role("row", name=name, exact=True).get_by_role("checkbox").uncheck()
        page.fill("input[name=userCount]", "4")
        page.fill("input[name=spawnRate]", "4")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="Vector DB").click()

        def drawn() -> bool:
            """Every chart has 3+ points: latency sync and async, recall, the open model, client vs server."""
            lines = _drawn(page) if page is not None else {}
            wanted = ("latency|pymilvus search|sync|p99_ms", "window|pymilvus search|async|p99_ms",
                      "recall|pymilvus search|async", "open_loop|achieved_rate", "server|Search|server")  # fmt: skip
            return all((lines.get(n) or {}).get("count", 0) >= 3 for n in wanted)

        assert _wait(drawn, 120), (ui.output()[-3000:], _drawn(page))
        page.get_by_role("button", name="Stop").click()
        assert _wait(lambda: "STOPPED" in page.locator("header").inner_text().upper(), 60)
        # the final point is added by test_stop's listeners, which Locust calls after it says "stopped": two polls of
        # the page's script later, the JSON it fetched holds it; then the page has drawn what it fetched
        polls_at_stop = len(fetched)
        seen: list[tuple[dict[str, Any], dict[str, dict[str, float]]]] = []

        def settled() -> bool:
            lines = _drawn(page) if page is not None else {}  # a call into the page: Playwright delivers events then
            if len(fetched) < polls_at_stop + 2:
                return False
            seen.append((fetched[-1], lines))
            return bool(lines) and _drawn_from(lines, fetched[-1])

        assert _wait(settled, 20), seen[-1:]
        page.screenshot(path=str(tmp_path / "webui-charts.png"), full_page=True)
        _check_final(page, ui, *seen[-1], tables[-1])
        link = page.locator("#loadgen-charts a", has_text="report of the current run")
        assert link.get_attribute("href") == "./loadgen/report.html"
        assert '<h2 id="store-calls">Store calls</h2>' in page.request.get(ui.url + "/loadgen/report.html").text()
        assert (tmp_path / "webui-charts.png").stat().st_size > 0
    finally:
        if page is not None:
            page.screenshot(path=str(tmp_path / "webui-charts-last.png"), full_page=True)  # what it showed, pass or not
            page.close()
        code = ui.stop()
    assert code in (0, 1), ui.output()[-3000:]
    assert collection not in client.list_collections()


def _drawn_from(lines: dict[str, dict[str, Any]], doc: dict[str, Any]) -> bool:
    return all((lines.get(n) or {}).get("last") == charts.latest(doc, n) for n in _for_row(doc, ROW))


ROW = "pymilvus search"  # the row the chooser shows first


def _check_final(page: Page, ui: UI, last: dict[str, Any], lines: dict[str, Any], table: dict[str, Any]) -> None:
    """Every series drawn, with the latest value of the JSON the page fetched; the final point is the table's last
    answer and results.json (one run, one set of numbers)."""
    names = _for_row(last, ROW)
    assert {"latency|pymilvus search|sync|p50_ms", "window|pymilvus search|sync|p99_ms", "recall|pymilvus search|sync",
            "open_loop|target_rate", "server|Search|pymilvus-async search"} <= names  # fmt: skip
    assert names == set(lines)  # one line per series of the chosen row, no more
    for name in names:
        assert lines[name]["last"] == charts.latest(last, name), name
    # one run, one set of numbers: the final point is the table's last answer and results.json
    final = last["points"][-1]
    assert final["window"]["pymilvus search"]["sync"]["rps"] > 0  # the last seconds' rate, beside the run's
    rows = {(r["layer"], r["operation"]): r for r in table["extended_stats"][0]["data"]}
    search = rows[("pymilvus", "search")]
    assert final["latency"]["pymilvus search"]["async"]["p99_ms"] == search["async_p99_ms"]
    assert final["recall"]["pymilvus search"]["sync"] == float(search["recall_sync"])
    results = json.loads(page.request.get(ui.url + "/loadgen/results.json").text())
    by_key = {(m["type"], m["name"]): m for m in results["requests"]}
    assert final["latency"]["pymilvus search"]["sync"]["p99_ms"] == round(by_key[("pymilvus", "search")]["p99_ms"], 3)
    assert final["open_loop"]["achieved_rate"] == round(results["open_loop"]["achieved_rate"], 3)
    assert final["open_loop"]["target_rate"] == 30.0
    assert final["server"]["Search"]["server_p99_ms"] == round(
        results["server"]["operations"]["Search"]["latency"]["p99_ms"], 3
    )
