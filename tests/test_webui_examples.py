"""The examples in the web UI (issue 14): `loadgen ui` with every example loaded, the class picker in real headless
Chromium picks one (search_then_fetch), its swarm runs against the real embedded Milvus with 0 failures."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT
from playwright.sync_api import Browser, Page
from pymilvus import MilvusClient
from test_webui import UI, _artifact, _cells, _number, _row_with, _wait

from loadgen.milvus.server import ServerInfo

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
PICKED = "SearchThenFetch"
OTHERS = ("LangChainRag", "LlamaIndexQuery")
ROWS = [("pymilvus", "search"), ("pymilvus", "get"), ("pymilvus-async", "search"), ("pymilvus-async", "get"),
        ("flow", "search_then_fetch")]  # fmt: skip

# every example's user in one locustfile (`loadgen ui -f` takes one file): the picker lists all of them
ALL_EXAMPLES = f'''
"""Every example in examples/, for the web UI's class picker."""
import importlib.util
from pathlib import Path

from locust import User

for _path in sorted(Path({str(ROOT / "examples")!r}).glob("*.py")):
    _spec = importlib.util.spec_from_file_location(f"example_{{_path.stem}}", _path)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    globals().update({{name: obj for name, obj in vars(_module).items()
                      if isinstance(obj, type) and issubclass(obj, User) and obj.__module__ == _module.__name__}})
'''


def _fails(page: Page, kind: str, name: str) -> float:
    return _number(_cells(_row_with(page, kind, name))[3])


def test_class_picker_runs_the_picked_example(
    milvus: ServerInfo, client: MilvusClient, browser: Browser, tmp_path: Path
) -> None:
    locustfile = tmp_path / "all_examples.py"
    locustfile.write_text(textwrap.dedent(ALL_EXAMPLES))
    collection = "lg_webui_examples"
    ui = UI(tmp_path, "--host", milvus.uri, "-f", str(locustfile), "--rows", "300", "--dim", "32",
            "--collection", collection, "--out", str(tmp_path / "out"))  # fmt: skip
    page: Page | None = None
    failing = True
    try:
        ui.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(ui.url + "/")
        for name in (PICKED, *OTHERS):  # every example's user is offered
            page.get_by_role("row", name=name, exact=True).wait_for()
        for name in OTHERS:
            page.get_by_role("row", name=name, exact=True).get_by_role("checkbox").uncheck()
        picked = page.get_by_role("row", name=PICKED, exact=True).get_by_role("checkbox")
        picked.check()
        assert picked.is_checked()
        page.fill("input[name=userCount]", "3")
        page.fill("input[name=spawnRate]", "3")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="Statistics").wait_for()
        for kind, name in ROWS:  # the example's rows appear, counting requests, none failed
            row = _row_with(page, kind, name)
            assert _wait(lambda r=row: r.count() == 1 and _number(_cells(r)[2]) > 0, 90), (kind, name)
        for kind, name in ROWS:
            assert _fails(page, kind, name) == 0, (kind, name)
        # only the picked user ran: no collection was prepared for the other examples' layers
        assert not {f"{collection}_langchain", f"{collection}_llamaindex"} & set(client.list_collections())
        page.screenshot(path=str(_artifact("webui-example-picked.png")))

        page.get_by_role("button", name="Stop").click()
        assert _wait(lambda: "STOPPED" in page.locator("header").inner_text().upper(), 30)
        results = json.loads(page.request.get(ui.url + "/loadgen/results.json").text())
        assert results["run"]["classes"] == [PICKED]
        assert results["totals"]["failures"] == 0 and results["totals"]["requests"] > 0, results["failures"]
        rows = {(m["type"], m["name"]): m for m in results["requests"]}
        for key in ROWS:
            assert rows[key]["requests"] > 0 and rows[key]["failures"] == 0, key
        assert {t.split("-")[0] for t, _ in rows} == {"pymilvus", "flow"}  # nothing from the other examples
        assert (
            results["flows"]["search_then_fetch"]["total"]["count"] == rows[("flow", "search_then_fetch")]["requests"]
        )
        failing = False
    finally:
        if page is not None and failing:
            page.screenshot(path=str(_artifact("webui-example-failure.png")), full_page=True)
        code = ui.stop()
    assert code == 0, ui.output()[-3000:]
    assert collection not in client.list_collections()  # loadgen's collection dropped when the UI quit
