"""`loadgen ui`: the Locust web UI with every user class, driven in real headless Chromium against the real Milvus;
its Vector DB tab and results; secrets kept out of the page; the embedded Milvus stopped with the UI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, server_counter
from playwright.sync_api import Browser, Locator, Page, Response
from pymilvus import MilvusClient

from loadgen.clients import row_kind, row_operation
from loadgen.milvus.server import ServerInfo, _group_members, free_ports
from loadgen.stats import run_page

ARTIFACTS = ROOT / "tests" / "artifacts"
TOKEN = "tok-webui-s3cr3t-9f2c"
# every endpoint the page reads, plus ours: none may carry the token
ENDPOINTS = ("/", "/stats/requests", "/tasks", "/logs", "/exceptions", "/worker-count", "/stats/report",
             "/stats/requests/csv", "/stats/failures/csv", "/loadgen/results.json", "/loadgen/report.html")  # fmt: skip


def _wait(cond: Callable[[], bool], seconds: float, step: float = 0.25) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _get(url: str) -> str | None:
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None


def _like_a_terminal() -> None:
    """A command started from a terminal gets Ctrl-C; background jobs of scripts (maybe this pytest) ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class UI:
    """A `loadgen ui` child process; stopped (SIGTERM, then SIGKILL) whatever the test did."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "ui.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", "ui", "--web-port", str(self.port), *args],
            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_like_a_terminal,  # noqa: PLW1509 - no threads here
        )  # fmt: skip

    def wait_ready(self, seconds: float = 120) -> None:
        assert _wait(lambda: _get(self.url + "/") is not None or self.proc.poll() is not None, seconds)
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise


# ---- no server needed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_type", "name", "expected"),
    [
        ("pymilvus", "search", ("pymilvus", "search", "sync")),
        ("pymilvus-async", "search", ("pymilvus", "search", "async")),
        ("pymilvus-async-fanout", "search", ("pymilvus", "search", "fanout")),
        ("langchain-async", "asimilarity_search", ("langchain", "similarity_search", "async")),
        ("langchain-async-fanout", "asimilarity_search", ("langchain", "similarity_search", "fanout")),
        ("langchain-async", "adelete[expr]", ("langchain", "delete_expr", "async")),
        ("langchain", "delete[expr]", ("langchain", "delete_expr", "sync")),
        ("langchain", "add_texts", ("langchain", "add_texts", "sync")),
        ("llamaindex-async", "async_add", ("llamaindex", "add", "async")),
        ("llamaindex-async", "aquery[filtered]", ("llamaindex", "query_filtered", "async")),
        ("llamaindex", "VectorStoreIndex.from_documents", ("llamaindex", "from_documents", "sync")),
        ("embedding", "add_texts", None),  # v1 rows: no table makes them
        ("pymilvus", "asearch", None),
    ],
)
def test_rows_pair_up_by_the_operation_tables(request_type: str, name: str, expected: tuple[str, str, str]) -> None:
    assert row_operation(request_type, name) == expected
    if expected:  # the table's kind: sizing counts reads only
        assert row_kind(request_type, name) in ("read", "write")


def test_report_page_escapes_what_the_server_said() -> None:
    row = {"type": "pymilvus", "name": "<b>search</b>", "requests": 3, "failures": 1, "rps": 1.0, "p50_ms": 1.2345}
    failure = {"type": "pymilvus", "name": "q", "occurrences": 1, "error": "<script>alert(1)</script>"}
    doc = {"run": {"state": "stopped", "users": 2}, "totals": {"requests": 3, "failures": 1}, "requests": [row],
           "failures": [failure], "settings": {"collection": "c"}}  # fmt: skip
    page = run_page.render(doc, server_function=lambda *_: None)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;search&lt;/b&gt;" in page and "1.234" in page  # ms to the microsecond


def test_bad_input_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with socket.socket() as busy:  # someone else's web server on the port
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = run_cli("ui", "--web-port", str(port), timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert (
            proc.stderr.strip() == f"loadgen: error: --web-port {port} on 127.0.0.1 is in use; pass another --web-port"
        )
    proc = run_cli("ui", "--no-such-flag", timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    proc = run_cli("ui", "--dim", "0", timeout=60)
    assert (proc.returncode, proc.stderr.strip()) == (2, "loadgen: error: --dim must be at least 1, got 0")
    assert "starting embedded Milvus" not in proc.stderr


# ---- the browser test against the real Milvus -------------------------------------------------------------------


def _cells(row: Locator) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def _number(text: str) -> float:
    return float(text) if re.fullmatch(r"[0-9.]+", text) else -1.0


def _row_with(page: Page, *cells: str) -> Locator:
    rows = page.get_by_role("table").get_by_role("row")
    for text in cells:
        rows = rows.filter(has=page.get_by_role("cell", name=text, exact=True))
    return rows


def _fill_form(page: Page, collection: str) -> None:
    """The class picker lists every user of every layer, sync and async; run the pymilvus pair with our options."""
    for name in ("PymilvusUser", "AsyncPymilvusUser", "LangChainUser", "AsyncLangChainUser", "LlamaIndexUser",
                 "AsyncLlamaIndexUser"):  # fmt: skip
        page.get_by_role("row", name=name, exact=True).wait_for()
    for name in ("LangChainUser", "AsyncLangChainUser", "LlamaIndexUser", "AsyncLlamaIndexUser"):
        page.get_by_role("row", name=name, exact=True).get_by_role("checkbox").uncheck()
    page.fill("input[name=userCount]", "4")
    page.fill("input[name=spawnRate]", "4")
    page.get_by_role("button", name="Custom parameters").click()
    assert page.input_value("input[name=milvusToken]") == ""  # masked and empty: the token stays in the env
    assert page.get_attribute("input[name=milvusToken]", "type") == "password"
    assert page.input_value("input[name=collection]") == collection  # loadgen ui's flags are the form's defaults
    page.select_option("select[name=consistencyLevel]", "Eventually")
    page.fill("input[name=weights]", "search=6,query=1,insert=1,fanout=1")
    page.fill("input[name=topK]", "5")
    page.fill("input[name=dataset]", "synthetic:clustered")


def _check_vector_db_tab(page: Page) -> None:
    """Microsecond percentiles, sync and async side by side, recall against the dataset, the run's state."""
    page.get_by_role("tab", name="Vector DB").click()
    header = [c.strip() for c in page.locator("thead th").all_inner_texts()]
    assert header[:2] == ["Layer", "Operation"] and "Async p99 ms" in header and "Recall sync" in header, header
    search = _row_with(page, "pymilvus", "search")
    assert _wait(lambda: search.count() == 1 and _cells(search)[header.index("Recall async")] != "", 15)
    cells = dict(zip(header, _cells(search), strict=True))
    for side in ("Sync", "Async"):
        p50, p99 = _number(cells[f"{side} p50 ms"]), _number(cells[f"{side} p99 ms"])
        assert 0 < p50 <= p99 < 10_000 and _number(cells[f"{side} req/s"]) > 0, cells
    assert all(0.5 <= _number(cells[f"Recall {s}"]) <= 1.0 for s in ("sync", "async")), cells
    assert _row_with(page, "pymilvus fan-out", "search").count() == 1  # fan-out calls: a row of their own
    assert "running, 4 users" in _row_with(page, "run").first.inner_text()


def _check_results(results: dict, collection: str) -> int:
    """The current run's results as served by the UI; returns how many searches succeeded."""
    assert results["format"] == "milvus-loadgen/results/v2" and results["run"]["state"] == "stopped"
    s = results["settings"]
    assert (s["consistency_level"], s["top_k"], s["collection"], s["dataset"]) == (
        "Eventually",
        5,
        collection,
        "synthetic:clustered",
    )  # the form's values reached the users
    assert s["weights"] == {"search": 6, "query": 1, "insert": 1, "fanout": 1} and s["token_set"] is True
    assert results["run"]["classes"] == ["AsyncPymilvusUser", "PymilvusUser"]
    by_key = {(m["type"], m["name"]): m for m in results["requests"]}
    for kind in ("pymilvus", "pymilvus-async"):
        m = by_key[(kind, "search")]
        assert m["requests"] > 0 and m["successes"] > 0 and 0 < m["p50_ms"] <= m["p99_ms"]
        assert 0.5 <= results["recall"][f"{kind} search"]["mean"] <= 1.0
    assert results["run"]["percentiles_from"] == "hdr" and results["totals"]["failures"] == 0
    return sum(m["successes"] for (_, name), m in by_key.items() if name == "search")


@pytest.mark.milvus
@pytest.mark.slow
def test_browser_configures_runs_watches_and_downloads(
    milvus: ServerInfo, client: MilvusClient, browser: Browser, tmp_path: Path
) -> None:
    collection = f"lg_webui_{os.getpid()}"
    searches_before = server_counter(milvus, "Search")
    page: Page | None = None
    failing = True
    ui = UI(tmp_path, "--host", milvus.uri, "--rows", "300", "--dim", "8", "--collection", collection,
            "--groundtruth-cache", str(tmp_path / "gt"), env={"LOADGEN_MILVUS_TOKEN": TOKEN})  # fmt: skip
    try:
        ui.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        seen: list[str] = []  # the state each poll told the page: what to look at when the page gets stuck

        def note(r: Response) -> None:
            if r.url.endswith(("/stats/requests", "/swarm")) and r.ok:
                seen.append(f"{time.monotonic():.1f} {r.url} {r.json().get('state') or r.json().get('message')}")

        page.on("response", note)
        page.goto(ui.url + "/")
        _fill_form(page, collection)
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="Statistics").wait_for()
        for kind in ("pymilvus", "pymilvus-async"):  # Locust's own table counts both users' searches
            row = _row_with(page, kind, "search")
            assert _wait(lambda r=row: r.count() == 1 and _number(_cells(r)[2]) > 0, 60), "\n".join(seen)
        time.sleep(10)  # about 10 s of load (the collection was filled before the first request)
        assert _number(_cells(_row_with(page, "pymilvus-async", "search"))[-2]) > 0  # Locust's current RPS
        page.screenshot(path=str(_artifact("webui-statistics.png")))
        _check_vector_db_tab(page)
        page.wait_for_timeout(600)  # the tab's underline and ripple settle before the picture
        page.screenshot(path=str(_artifact("webui-vector-db.png")))
        rendered = [page.content()]

        page.get_by_role("button", name="Stop").click()
        assert _wait(lambda: "STOPPED" in page.locator("header").inner_text().upper(), 30), "\n".join(seen[-8:])
        page.get_by_role("tab", name="Download Data").click()  # the current run's report, linked there
        href = page.get_by_role("link", name=re.compile("loadgen results of the current run")).get_attribute("href")
        assert href == "./loadgen/results.json"
        rendered.append(page.content())
        searched = _check_results(json.loads(page.request.get(ui.url + "/loadgen/results.json").text()), collection)
        assert server_counter(milvus, "Search") - searches_before >= searched  # the server saw them all
        report = page.request.get(ui.url + "/loadgen/report.html").text()
        assert '<h2 id="store-calls">Store calls</h2>' in report and "pymilvus-async" in report
        assert "Eventually" in report

        for path in ENDPOINTS:  # the token: in no page or endpoint the UI serves, nor in the rendered page
            assert TOKEN not in page.request.get(ui.url + path).text(), path
        assert not any(TOKEN in html for html in rendered)
        failing = False
    finally:
        if page is not None and failing:  # what the browser showed, for the CI artifacts
            page.screenshot(path=str(_artifact("webui-failure.png")), full_page=True)
        code = ui.stop()
    assert code in (0, 1), ui.output()[-3000:]
    assert TOKEN not in ui.output()
    assert collection not in client.list_collections()  # loadgen's collection dropped when the UI quit


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# ---- process hygiene ------------------------------------------------------------------------------------------


def _rows(ui: UI) -> list[str]:
    """The Vector DB tab's rows, as the page gets them, one string each."""
    answer = json.loads(_get(ui.url + "/stats/requests") or "{}")
    return [" ".join(map(str, r.values())) for r in (answer.get("extended_stats") or [{}])[0].get("data", [])]


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: not gone, and not a zombie (a child that exited and waits to be reaped; once
    `loadgen ui` is gone its zombies belong to PID 1, which in a container may reap them late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.milvus
@pytest.mark.slow
def test_ui_starts_embedded_milvus_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    ui = UI(tmp_path, "--rows", "100", "--dim", "8", "--arrival-rate", "20", "--weights", "search=1")
    try:
        ui.wait_ready(180)
        page = _get(ui.url + "/") or ""
        host = re.search(r'"host": "(http://127\.0\.0\.1:\d+)"', page)
        assert host, page[:2000]
        # bad options in the form: refused as Locust refuses a bad form (the form shows the message), before
        # anything starts, and the Vector DB tab says why too
        form = b"user_count=2&spawn_rate=2&user_classes=PymilvusUser&weights=nosuch%3D1"
        answer = json.loads(urllib.request.urlopen(ui.url + "/swarm", data=form, timeout=60).read())
        error = "loadgen: error: --weights: unknown task 'nosuch'"
        assert not answer["success"] and answer["message"].startswith(error), answer
        assert any(error in r for r in _rows(ui)), _rows(ui)
        form = b"user_count=2&spawn_rate=2&user_classes=PymilvusUser&check_p99_ms=fast"
        answer = json.loads(urllib.request.urlopen(ui.url + "/swarm", data=form, timeout=60).read())
        assert answer["message"] == "loadgen: error: --check-p99-ms 'fast': expected a number", answer
        # an open-model swarm, started as the form would: the Vector DB rows say what was asked and what was sent
        form = b"user_count=2&spawn_rate=2&user_classes=PymilvusUser&weights=search%3D1"
        assert json.loads(urllib.request.urlopen(ui.url + "/swarm", data=form, timeout=60).read())["success"]

        open_loop = re.compile(r"target 20\.0 req/s.*sent [1-9]")
        assert _wait(lambda: any(open_loop.search(r) for r in _rows(ui)), 60), _rows(ui)
        assert not any("error" in r for r in _rows(ui))
        data_dir = Path(re.search(r"logs: (\S+)/logs", ui.output()).group(1))  # type: ignore[union-attr]
        milvus_pid = json.loads((data_dir / "loadgen-server.json").read_text())["pid"]
        assert _group_members(milvus_pid)
        locusts = [int(p) for p in subprocess.run(["pgrep", "-P", str(ui.proc.pid)], capture_output=True,
                                                  text=True, check=False).stdout.split()]  # fmt: skip
        assert locusts
    finally:
        code = ui.stop(signal.SIGINT)  # what Ctrl-C in the terminal sends
    assert code == 0, ui.output()[-3000:]
    assert not _group_members(milvus_pid), "embedded Milvus outlived `loadgen ui`"
    assert not any(_running(p) for p in locusts), "Locust outlived `loadgen ui`"
    assert _get(ui.url + "/") is None
    assert not data_dir.exists()  # a clean stop removes the temporary server


@pytest.mark.slow
def test_token_given_as_a_locust_flag_stays_out_of_the_form(tmp_path: Path) -> None:
    """Locust re-parses argv to fill the form; a --milvus-token there must not be written into the page."""
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "locustfiles/all_users.py", "--class-picker",
         "--host", "http://127.0.0.1:9", "--web-host", "127.0.0.1", "--web-port", str(port), "--milvus-token", TOKEN],
        cwd=ROOT, env={**os.environ, "LOCUST_SKIP_MONKEY_PATCH": "1"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait(lambda: _get(f"http://127.0.0.1:{port}/") is not None, 60), "web UI did not answer"
        page = _get(f"http://127.0.0.1:{port}/") or ""
        assert '"milvus_token"' in page and '"is_secret": true' in page
        assert TOKEN not in page
        assert TOKEN not in (_get(f"http://127.0.0.1:{port}/loadgen/results.json") or TOKEN)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
