"""The shape of a request (issue 30, item 3): ``--nq`` query vectors per search, each scored against its own ground
truth and counted apart from the requests, and ``--output-fields`` profiles whose answers' bytes are measured, in the
pymilvus layers and the fast path; one definition of each figure from results.json to the summary, the web UI's
rows, the report and the checks; the layers that search one query per call refuse another shape in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ROOT, run_cli, run_script

from loadgen.milvus.server import ServerInfo
from loadgen.report import analysis, diff, document
from loadgen.report.load import Run
from loadgen.stats import checks, figures, results, run_page
from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.recall import RecallListener
from loadgen.stats.shape import ShapeTally
from loadgen.web.table import rows_of

SHAPE_USERS = str(ROOT / "tests" / "locustfiles" / "shape_users.py")
NQ, TOP_K, DIM = 4, 5, 16


# ---- against the session Milvus -------------------------------------------------------------------------------
@pytest.mark.milvus
def test_each_layer_counts_scores_and_measures_every_profile(milvus: ServerInfo) -> None:
    out = run_script("shape_check.py", milvus.uri, timeout=180)
    sizes: dict[str, dict[str, list[int]]] = {}
    for profile in ("ids", "scalar", "vectors", "all"):
        for layer, calls in out[profile].items():
            for call in calls:
                assert call["nq"] == NQ and call["hits"] == NQ * TOP_K, (profile, layer, call)
                # FLAT: exact hits, so each query vector scored against its OWN truth recalls 1.0; scored against
                # another vector's truth (the first one's, say), the other three would score near 0
                assert call["recall"] == [1.0] * NQ, (profile, layer, call)
            sizes.setdefault(profile, {})[layer] = [int(c["bytes"]) for c in calls]
    ids, vectors = sizes["ids"], sizes["vectors"]
    for layer in ids:  # pymilvus, pymilvus-async, fast, fast-async: every one measured its answers
        assert max(ids[layer]) < min(sizes["scalar"][layer]) < min(sizes["all"][layer]), (layer, sizes)
        # the vectors themselves: nq * k hits of dim float32 each, at least, on top of the ids-only answer
        assert min(vectors[layer]) - max(ids[layer]) >= NQ * TOP_K * DIM * 4, (layer, sizes)
        assert max(vectors[layer]) < min(sizes["all"][layer])
    # the size is the Search response's: the stub called apart gives the same within a few bytes (distances differ)
    apart = out["apart"]
    for layer in ids:
        assert abs(sum(ids[layer]) / len(ids[layer]) - apart["ids"]) < 16, (layer, ids[layer], apart)
        assert abs(sum(vectors[layer]) / len(vectors[layer]) - apart["vectors"]) < 16, (layer, vectors[layer], apart)


@pytest.mark.milvus
def test_nq_4_run_counts_four_query_vectors_per_request_and_scores_each(milvus: ServerInfo, tmp_path: Path) -> None:
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", SHAPE_USERS, "-u", "4", "-t", "3s", "--rows", "300", "--dim", str(DIM),
        "--index-type", "FLAT", "--top-k", str(TOP_K), "--dataset", "synthetic:uniform", "--nq", str(NQ),
        "--output-fields", "vectors", "--weights", "search=1", "--collection", "lg_shape_run", "--out", str(tmp_path),
        "--check-max-response-bytes", "100", "--check-min-qvps", "1",
    )  # fmt: skip
    # the answers carry vectors: well over 100 bytes a call, so that check fails (exit 3); the qvps one holds
    assert proc.returncode == 3, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    failed = doc["checks"]["failed"]
    assert len(failed) == 4 and all("bytes/call > 100" in line for line in failed), failed
    rows = {m["type"]: m for m in doc["requests"]}
    assert set(rows) == {"pymilvus", "pymilvus-async", "pymilvus-fast", "pymilvus-fast-async"}, list(rows)
    for kind, m in rows.items():
        assert m["requests"] > 0 and m["failures"] == 0, (kind, doc["failures"])
        assert m["query_vectors"] == NQ * m["requests"] and m["nq"] == NQ, (kind, m)
        assert m["qvps"] == pytest.approx(NQ * m["rps"]), (kind, m)
        assert m["response_bytes_calls"] == m["successes"], (kind, m)
        assert m["response_bytes_per_call"] > NQ * TOP_K * DIM * 4, (kind, m)
        recall = doc["recall"][f"{kind} search"]
        assert recall["count"] == NQ * m["successes"] and recall["mean"] == 1.0, (kind, recall)  # per query vector
    totals = doc["totals"]
    assert totals["query_vectors"] == NQ * totals["requests"]
    assert totals["qvps"] == pytest.approx(NQ * totals["qps"])
    head = next(line for line in proc.stdout.splitlines() if line.startswith("type "))
    assert "qv/s" in head and "bytes/call" in head and "recall" in head, head


@pytest.mark.milvus
def test_a_custom_users_searches_of_several_vectors_are_scored_each(milvus: ServerInfo, tmp_path: Path) -> None:
    """Your own locustfile: ``self.query_vectors()`` (``--nq`` of them) through the timed pymilvus handles."""
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", "examples/search_then_fetch.py", "-u", "2", "-t", "3s", "--nq", "3",
        "--dataset", "synthetic:uniform", "--rows", "300", "--dim", str(DIM), "--index-type", "FLAT",
        "--collection", "lg_shape_custom", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = {(m["type"], m["name"]): m for m in doc["requests"]}
    for kind in ("pymilvus", "pymilvus-async"):
        m = rows[(kind, "search")]
        assert m["successes"] > 0 and m["query_vectors"] == 3 * m["requests"], m
        assert m["response_bytes_calls"] == m["successes"] and m["response_bytes_per_call"] > 0, m
        scored = doc["recall"][f"{kind} search"]
        assert scored["count"] == 3 * m["successes"] and scored["mean"] == 1.0, scored  # FLAT: exact, per vector
        assert "query_vectors" not in rows[(kind, "get")]  # a get sends no query vectors


# ---- bad values and the layers that search one query per call: one line, before any server starts ---------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nq", "0"], "loadgen: error: --nq must be at least 1, got 0"),
        (["--output-fields", "payload"], "argument --output-fields: invalid choice: 'payload'"),
        (["-f", "locustfiles/langchain_users.py", "--nq", "4"],
         "LangChainUser: --nq 4: the langchain layer searches one query per call"),
        (["-f", "locustfiles/llamaindex_users.py", "--output-fields", "vectors"],
         "LlamaIndexUser: --output-fields vectors: the llamaindex layer searches one query per call"),
        (["-f", "locustfiles/all_users.py", "AsyncLangChainUser", "PymilvusUser", "--nq", "2"],
         "AsyncLangChainUser: --nq 2: the langchain layer"),
    ],
)  # fmt: skip
def test_bad_shape_is_one_line(args: list[str], message: str) -> None:
    proc = run_cli("run", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert lines[0].startswith("loadgen: error: ")


def test_a_plain_locust_start_refuses_the_shape_for_a_framework_class() -> None:
    """The check Locust's start makes (the web UI's form too: ``loadgen.locust.starting``), before any connection."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "locust"), "-f", "locustfiles/all_users.py", "--headless", "-u", "1",
         "-t", "2s", "--host", "http://127.0.0.1:1", "--nq", "3", "LlamaIndexUser", "PymilvusUser"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("loadgen: error:")]
    assert errors == [
        "loadgen: error: LlamaIndexUser: --nq 3: the llamaindex layer searches one query per call and returns the "
        "fields its library chooses; --nq and --output-fields apply to the pymilvus layers and the fast path "
        "(PymilvusUser, AsyncPymilvusUser, FastPymilvusUser, AsyncFastPymilvusUser)"
    ], proc.stderr[-2000:]


# ---- one definition of each figure ------------------------------------------------------------------------------
def _doc(tally: ShapeTally, window: float = 2.0) -> dict[str, Any]:
    latency = LatencyHistograms()
    for _ in range(3):
        latency.record("pymilvus", "search", 1.5)
    rows = [figures.request_row("pymilvus", "search", requests=4, failures=1, length=0, window=window,
                                latency=latency, shape=tally),
            figures.request_row("pymilvus", "query", requests=2, failures=0, length=0, window=window,
                                latency=latency, shape=tally)]  # fmt: skip
    return {"requests": rows, "totals": figures.totals(rows, window), "failures": [], "run": {}}


def test_tally_merges_across_workers_and_defines_the_figures() -> None:
    worker_a, worker_b, master = ShapeTally(), ShapeTally(), ShapeTally()
    for nq, size in ((4, 1000), (4, 3000), (4, None)):  # the last call failed: its vectors count, no answer
        worker_a.record("pymilvus", "search", nq, size)
    worker_b.record("pymilvus", "search", 4, 2000)
    master.merge_payload(json.loads(json.dumps(worker_a.to_payload())))
    master.merge_payload(json.loads(json.dumps(worker_b.to_payload())))
    doc = _doc(master)
    search, query = doc["requests"]
    assert search["query_vectors"] == 16 and search["nq"] == 4 and search["qvps"] == 8.0
    assert search["response_bytes_per_call"] == 2000 and search["response_bytes_max"] == 3000
    assert search["response_bytes_calls"] == 3 and search["response_bytes_total"] == 6000
    assert "query_vectors" not in query and "response_bytes_per_call" not in query  # a row that counts none
    assert doc["totals"]["query_vectors"] == 16 and doc["totals"]["qvps"] == 8.0
    table = results.render_table(doc)
    head = table.splitlines()[0]
    assert head.split()[-2:] == ["qv/s", "bytes/call"], head
    total = next(line for line in table.splitlines() if " TOTAL " in line)
    assert total.split()[-1] == "8.0", total  # the run's query vectors per second
    search_line = next(line for line in table.splitlines() if line.startswith("pymilvus") and " search " in line)
    assert search_line.split()[-2:] == ["8.0", "2000"], search_line
    header, body = run_page._store_calls(doc).tables[0]  # every run's report.html
    at = header.index("query vectors/s")
    assert header[at + 1] == "bytes/call"
    assert {r[1]: r[at : at + 2] for r in body} == {"search": ("8.0", "2000"), "query": ("", ""), "TOTAL": ("8.0", "")}
    web = {r["operation"]: r for r in rows_of(SimpleNamespace(runner=None), SimpleNamespace(error=None), doc)}
    assert web["search"]["sync_qvps"] == 8.0 and web["search"]["sync_bytes"] == 2000
    assert "sync_qvps" not in web["query"]


def test_checks_read_the_same_figures() -> None:
    tally = ShapeTally()
    tally.record("pymilvus", "search", 4, 2000)
    doc = _doc(tally)
    assert checks.evaluate(checks.Checks(min_qvps=2.0, max_response_bytes=2000), doc) == []
    failed = checks.evaluate(checks.Checks(min_qvps=2.5, max_response_bytes=1999), doc)
    assert failed == ["check failed: query vectors 2/s < 2.5/s",
                      "check failed: response 2000 bytes/call > 1999 (pymilvus search)"]  # fmt: skip
    none = checks.evaluate(checks.Checks(min_qvps=1, max_response_bytes=1), _doc(ShapeTally()))
    assert len(none) == 2 and all("required but" in line for line in none), none


def test_report_shows_the_shape_beside_latency() -> None:
    tally = ShapeTally()
    tally.record("pymilvus", "search", 4, 2000)
    doc = {**_doc(tally), "format": results.FORMAT, "settings": {}, "run": {"users": 4}}
    run = Run(source="r", results=doc)
    pts = analysis.points([run])
    search = next(p for p in pts if p.name == "search")
    assert search.qvps == 2.0 and search.response_bytes_per_call == 2000
    a = analysis.analyse([run], slo_p99_ms=None, max_error_rate=0.01)
    header, rows = document._curves_section("pymilvus", a["curves"], None).tables[1]
    at = header.index("p99 ms")
    assert header[at + 1 : at + 3] == ("query vectors/s", "bytes/call")
    assert [r[at + 1 : at + 3] for r in rows if r[0] == "pymilvus search"] == [("2.0", "2000")]
    heavier = ShapeTally()
    heavier.record("pymilvus", "search", 4, 50000)  # --output-fields vectors, say: same calls, bigger answers
    candidate = Run(source="c", results={**_doc(heavier, window=4.0), "format": results.FORMAT, "settings": {},
                                         "run": {"users": 4}})  # fmt: skip
    header, rows = document._diff_section(diff.diff([run], [candidate])).tables[0]
    assert header[-3:] == ("bytes/call before", "bytes/call after", "query vectors/s delta")
    assert [r[-3:] for r in rows if r[0] == "pymilvus search"] == [("2000", "50000", "-50.0%")]


def test_recall_listener_counts_every_query_vector() -> None:
    class Events:  # every event a listener attaches to: none fires here, the test calls on_request itself
        def __getattr__(self, _name: str) -> Any:
            return SimpleNamespace(add_listener=lambda fn: None)

    listener = RecallListener(SimpleNamespace(events=Events()))
    listener.on_request("pymilvus", "search", context={"recall": [1.0, 0.5, 0.0, 0.5]})
    listener.on_request("pymilvus", "search", context={"recall": 1.0})
    listener.on_request("pymilvus", "search", exception=RuntimeError("x"), context={"recall": [0.0]})
    stats = listener.stats[("pymilvus", "search")]
    assert stats.count == 5 and stats.summary()["mean"] == pytest.approx(0.6)
