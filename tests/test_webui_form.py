"""The web UI as a user meets it, in real headless Chromium through the start form, against the real embedded Milvus:
a mistake in the form is refused in the form before anything is created; a start shows its preparation; every run
keeps its results, however it ends (the Stop button, Ctrl-C, SIGTERM, a start that failed while it prepared), and
their totals are the tab's last figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, master_port
from playwright.sync_api import Browser, Page
from pymilvus import DataType, MilvusClient
from run_report_html import check_same_figures, rows
from test_webui import UI, _artifact, _get, _wait

from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
FRAMEWORK_CLASSES = ("LangChainUser", "AsyncLangChainUser", "LlamaIndexUser", "AsyncLlamaIndexUser")
MISTAKE = "search=4,query=1,insert=1,fanout=0"  # pymilvus names: the LangChain and LlamaIndex async users get nothing


def _tab(url: str) -> dict[str, Any]:
    """What the page's table poll answers: Locust's state and the Vector DB tab's rows."""
    return json.loads(_get(url + "/stats/requests") or "{}")


def _run_row(answer: dict[str, Any]) -> str:
    return str(answer["extended_stats"][0]["data"][0]["operation"])


def _totals_shown(answer: dict[str, Any]) -> tuple[int, int]:
    """(calls, failed) as the tab's run row says them."""
    words = _run_row(answer).split("; ")[1].split()
    return int(words[0]), int(words[2])


def _results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


def _run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("ui-*") if p.is_dir()) if out.exists() else []


class Poller:
    """Polls the tab's answer as the page does (faster, so the last answer before the UI goes away is seen)."""

    def __init__(self, url: str) -> None:
        self.url, self.answers, self._stop = url, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            answer = _tab(self.url)
            if answer:
                self.answers.append(answer)
            time.sleep(0.02)

    def last_stopped(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        stopped = [a for a in self.answers if a.get("state") == "stopped"]
        assert stopped, [a.get("state") for a in self.answers[-5:]]
        return stopped[-1]


def _pick(page: Page, *, frameworks: bool, users: int = 4) -> None:
    for name in FRAMEWORK_CLASSES:
        box = page.get_by_role("row", name=name, exact=True).get_by_role("checkbox")
        box.check() if frameworks else box.uncheck()
    page.fill("input[name=userCount]", str(users))
    page.fill("input[name=spawnRate]", str(users))


def _requests_flow(url: str, seconds: float = 60) -> None:
    def flowing() -> bool:
        answer = _tab(url)
        return answer.get("state") == "running" and _totals_shown(answer)[0] > 50

    last = _tab(url)
    assert _wait(flowing, seconds), (last.get("state"), [r["operation"] for r in last["extended_stats"][0]["data"]])


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    p = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield p
    p.close()


def test_form_mistake_preparation_and_every_ending_keeps_results(
    milvus: ServerInfo, client: MilvusClient, page: Page, tmp_path: Path
) -> None:
    collection, out = f"lg_form_{os.getpid()}", tmp_path / "results"
    ui = UI(tmp_path, "--host", milvus.uri, "--weights", MISTAKE, "--rows", "3000", "--dim", "8",
            "--collection", collection, "--out", str(out))  # fmt: skip
    failing = True
    try:
        ui.wait_ready()
        page.goto(ui.url + "/")
        page.get_by_role("row", name="PymilvusUser", exact=True).wait_for()
        _refused_in_the_form(page, ui, client, out)
        _prepares_then_runs(page, ui, collection)
        _stop_button_keeps_results(page, ui, out)
        # only the picked classes' layer was prepared
        assert collection in client.list_collections() and collection + "_langchain" not in client.list_collections()
        _fails_while_preparing(page, ui, client, out, collection + "_b")
        _ctrl_c_keeps_results(page, ui, out, collection)
        failing = False
    finally:
        if failing:
            page.screenshot(path=str(_artifact("webui-form-failure.png")), full_page=True)
        ui.stop()
    assert "Traceback" not in ui.output(), ui.output()[-3000:]
    made = {collection, collection + "_langchain", collection + "_b_langchain", collection + "_b_llamaindex"}
    assert not made & set(client.list_collections())  # every collection the UI's runs made: dropped at its end


def _refused_in_the_form(page: Page, ui: UI, client: MilvusClient, out: Path) -> None:
    """The class picker's default (every class) with pymilvus weights: refused in the form, in seconds, before
    anything is created."""
    before = set(client.list_collections())
    started = time.monotonic()
    page.get_by_role("button", name="Start").click()
    alert = page.get_by_role("alert").filter(has_text="loadgen: error:")
    alert.wait_for(timeout=15_000)
    assert time.monotonic() - started < 15
    text = alert.inner_text().strip()
    assert text.startswith("loadgen: error: AsyncLangChainUser: every task has weight 0 in --weights"), text
    assert "\n" not in text
    assert set(client.list_collections()) == before and not _run_folders(out)  # nothing created, no results
    assert ui.proc.poll() is None and "Traceback" not in ui.output() and "Unhandled" not in ui.output()
    page.locator("#loadgen-status[data-phase=failed]").wait_for()  # above the page too, and in the tab
    assert any(text in str(r["operation"]) for r in _tab(ui.url)["extended_stats"][0]["data"])
    page.screenshot(path=str(_artifact("webui-form-failed-start.png")))


def _prepares_then_runs(page: Page, ui: UI, collection: str) -> None:
    """The same form with the pymilvus users only: the preparation shows on the page, then the run."""
    _pick(page, frameworks=False)
    page.get_by_role("button", name="Start").click()
    status = page.locator("#loadgen-status[data-phase=preparing]")
    status.wait_for(timeout=30_000)
    assert status.inner_text().startswith("loadgen: preparing the collections: "), status.inner_text()
    page.get_by_role("tab", name="Vector DB").click()
    preparing = page.get_by_role("cell").filter(has_text="preparing: ")
    preparing.first.wait_for(timeout=30_000)
    assert collection in preparing.first.inner_text()
    page.screenshot(path=str(_artifact("webui-form-preparing.png")))
    _requests_flow(ui.url)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(_artifact("webui-form-running.png")), full_page=True)


def _stop_button_keeps_results(page: Page, ui: UI, out: Path) -> None:
    """The Stop button: the run's folder holds results.json and the report, with the tab's last figures."""
    page.get_by_role("button", name="Stop").click()
    assert _wait(lambda: _tab(ui.url).get("state") == "stopped", 30)
    assert _wait(lambda: len(_run_folders(out)) == 1, 10), list(out.glob("*"))
    first = _run_folders(out)[0]
    results = _results(first)
    assert (results["totals"]["requests"], results["totals"]["failures"]) == _totals_shown(_tab(ui.url))
    assert results["run"]["classes"] == ["AsyncPymilvusUser", "PymilvusUser"]
    assert results["settings"]["weights"] == {"search": 4, "query": 1, "insert": 1, "fanout": 0}
    check_same_figures(first)  # the run's report.html: results.json's figures, row by row
    assert (first / "latency.json").is_file()


def _fails_while_preparing(page: Page, ui: UI, client: MilvusClient, out: Path, name: str) -> None:
    """A start that fails while it prepares: someone else's collection appears under its name meanwhile. The page
    says why, the run's folder keeps its results with the error, the form can start again."""
    _new_test(page)
    _pick(page, frameworks=True)
    _custom(page, weights="similarity_search=1,query=1,search=1", collection=name)
    page.get_by_role("button", name="Start").click()
    page.locator("#loadgen-status[data-phase=preparing]").wait_for(timeout=30_000)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection(name, schema=schema)  # a user's, made while LangChain's fills
    failed = page.locator("#loadgen-status[data-phase=failed]")
    failed.wait_for(timeout=60_000)
    assert "was not created by loadgen" in failed.inner_text(), failed.inner_text()
    assert _wait(lambda: _tab(ui.url).get("state") == "stopped", 10)  # the page may start again
    assert _wait(lambda: len(_run_folders(out)) == 2, 10)
    assert "was not created by loadgen" in _results(_run_folders(out)[1])["run"]["error"]
    assert client.describe_collection(name)["description"] == ""  # the user's, untouched
    client.drop_collection(name)
    page.screenshot(path=str(_artifact("webui-form-failed-preparation.png")))


def _ctrl_c_keeps_results(page: Page, ui: UI, out: Path, collection: str) -> None:
    """A new start, ended by Ctrl-C on `loadgen ui`: its results are the tab's last figures too."""
    _new_test(page)
    _pick(page, frameworks=False)
    _custom(page, collection=collection, weights=MISTAKE)  # the form keeps the last start's values
    page.get_by_role("button", name="Start").click()
    _requests_flow(ui.url)
    poller = Poller(ui.url)
    assert ui.stop(signal.SIGINT) == 0, ui.output()[-3000:]
    shown = _totals_shown(poller.last_stopped())
    third = _run_folders(out)[2]
    assert (_results(third)["totals"]["requests"], _results(third)["totals"]["failures"]) == shown
    assert _results(third)["run"]["classes"] == ["AsyncPymilvusUser", "PymilvusUser"]


def _custom(page: Page, **fields: str) -> None:
    """Fill fields under the form's "Custom parameters" (opened first if it is closed)."""
    first = page.locator(f"input[name={next(iter(fields))}]")
    if not first.is_visible():
        page.get_by_role("button", name="Custom parameters").click()
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)


def _new_test(page: Page) -> None:
    page.get_by_role("button", name="New").click()
    page.get_by_role("button", name="Start").wait_for()


def test_sigterm_to_a_plain_locust_keeps_the_form_runs_results(
    milvus: ServerInfo, client: MilvusClient, page: Page, tmp_path: Path
) -> None:
    """The master a Kubernetes pod runs: plain `locust` with the class picker, with workers (`--processes 2`: the
    last calls reach the master with the workers' reports after the stop), gets SIGTERM mid-run."""
    (port,) = free_ports(1)
    out, url, collection = tmp_path / "results", f"http://127.0.0.1:{port}", f"lg_form_term_{os.getpid()}"
    log = tmp_path / "locust.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "locustfiles/all_users.py", "--class-picker", "--host", milvus.uri,
         "--web-host", "127.0.0.1", "--web-port", str(port), "--results-dir", str(out), "--rows", "300", "--dim", "8",
         "--collection", collection, "--check-p99-ms", "10000", "--processes", "2", *master_port()],
        cwd=ROOT, env={**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}, stdin=subprocess.DEVNULL,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait(lambda: _get(url + "/") is not None, 60), log.read_text()
        page.goto(url + "/")
        page.get_by_role("row", name="PymilvusUser", exact=True).wait_for()
        _pick(page, frameworks=False, users=2)
        _custom(page, checkFailRatio="0.5")  # typed into the form: a number, not text, in the checks
        assert page.input_value("input[name=checkP99Ms]") == "10000"
        page.get_by_role("button", name="Start").click()
        _requests_flow(url)
        poller = Poller(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        (folder,) = _run_folders(out)
        results = _results(folder)
        assert (results["totals"]["requests"], results["totals"]["failures"]) == _totals_shown(poller.last_stopped())
        assert results["checks"]["set"]["fail_ratio"] == 0.5 and results["checks"]["set"]["p99_ms"] == 10000.0
        assert results["checks"]["failed"] == []
        page = check_same_figures(folder)  # a master's web UI run too
        assert rows(page.tables["checks"][0]) == [{"check": "--check-p99-ms", "limit": "10000"},
                                                  {"check": "--check-fail-ratio", "limit": "0.5"}]  # fmt: skip
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in log.read_text() and "could not write" not in log.read_text(), log.read_text()[-3000:]
    assert collection not in client.list_collections()
