"""``loadgen runbook``: the steps as written, checked on paper, and played against the session Milvus: every search
step is scored against the truth over the rows present after the steps before it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.errors import LoadgenError
from loadgen.milvus.server import ServerInfo
from loadgen.stats import checks
from loadgen.workload import runbook
from loadgen.workload.datasets import open_dataset
from loadgen.workload.groundtruth import RecallStats, compute_ground_truth

DIM, ROWS, QUERIES, K = 16, 3000, 40, 10


def test_inline_and_file_spellings_are_one_list_of_steps(tmp_path: Path) -> None:
    inline = runbook.parse_inline("insert:0:100, search, delete:10:20, replace:20:30:500, search")
    path = tmp_path / "rb.yaml"
    path.write_text(
        "1: {operation: insert, start: 0, end: 100}\n2: {operation: search}\n"
        "3: {operation: delete, start: 10, end: 20}\n"
        "4: {operation: replace, tags_start: 20, tags_end: 30, ids_start: 500}\n5: {operation: search}\nmax_pts: 100\n"
    )  # big-ann-benchmarks' runbook body
    from_file = runbook.load_file(path)
    assert [s.label for s in inline] == [s.label for s in from_file] == [
        "insert ids 0..99", "search", "delete ids 10..19", "replace ids 20..29 with dataset rows 500..509", "search",
    ]  # fmt: skip
    assert from_file[3].source.tolist() == list(range(500, 510))
    (tmp_path / "ids.json").write_text(json.dumps({"steps": [{"op": "delete", "ids": [7, 3, 3]}]}))
    assert runbook.load_file(tmp_path / "ids.json")[0].ids.tolist() == [3, 7]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("insert:0:10", "no search step"),
        ("insert:0:20,insert:10:30,search", "step 2 (insert ids 10..29): id 10 is already present (use replace)"),
        ("insert:0:20,delete:15:25,search", "step 2 (delete ids 15..24): id 20 is not present"),
        ("insert:0:5,search", "holds 5 rows, fewer than --top-k 10"),
        ("insert:0:20,replace:0:10:95,search", "needs dataset row 104, the dataset has 100"),
        ("insert:5:5,search", "expected 0 <= start < end"),
        ("upsert:0:5", "unknown operation 'upsert'"),
        ("insert:0,search", "insert takes 2 numbers, got 1"),
    ],
)
def test_steps_that_cannot_be_done_are_refused_on_paper(text: str, message: str) -> None:
    with pytest.raises(LoadgenError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        runbook.check(runbook.parse_inline(text), 100, K)


def test_exact_truth_is_over_the_rows_present() -> None:
    ds = open_dataset("synthetic:clustered", dim=DIM, count=500, num_queries=20, seed=3)
    base, queries = np.concatenate([v for _, v in ds.iter_base(100)]), ds.queries()
    state = runbook.State(500)
    state.apply(runbook.parse_inline("insert:0:500")[0])
    full = runbook.exact_top_k(queries, base, state, K, "L2")
    assert np.array_equal(full, compute_ground_truth(ds, K, "L2"))  # all rows present: the dataset's own truth
    gone = np.unique(full)
    state.apply(runbook.Step("delete", gone, np.empty(0, dtype=np.int64)))
    after = runbook.exact_top_k(queries, base, state, K, "L2")
    assert not set(after.ravel().tolist()) & set(gone.tolist())


def test_p10_is_nearest_rank_and_checked() -> None:
    stats = RecallStats()
    stats.extend([0.0] * 10 + [1.0] * 90)  # mean 0.9, and a tenth of the queries at 0
    s = stats.summary()
    assert (s["mean"], s["p10"], s["min"]) == (0.9, 0.0, 0.0)
    doc = {"recall": {"pymilvus search": s}, "runbook": {"steps": [{"step": 2, "recall": s}, {"step": 3}], "recall": s}}
    failed = checks.evaluate(checks.Checks(min_recall=0.85, min_recall_p10=0.5), doc)
    assert failed == [
        "check failed: recall p10 0 < 0.5 (pymilvus search)",
        "check failed: recall p10 0 < 0.5 (runbook step 2)",
    ]  # the mean (0.9) passes its own check
    assert checks.evaluate(checks.Checks(min_recall_p10=0.5), {}) == [
        "check failed: recall p10 >= 0.5 required but no per-query recall measured"
    ]


def test_no_steps_is_one_line() -> None:
    done = run_cli("runbook", "--host", "http://127.0.0.1:1")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "loadgen: error: loadgen runbook: pass the steps as --steps or as a --runbook file (one of them)"
    )


def test_deleting_the_true_neighbours_changes_the_truth_not_the_score(
    milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    ds = open_dataset("synthetic:clustered", dim=DIM, count=ROWS, num_queries=QUERIES, seed=7)
    base = np.concatenate([v for _, v in ds.iter_base(1000)])
    first = runbook.State(2000)
    first.apply(runbook.parse_inline("insert:0:2000")[0])
    neighbours = np.unique(runbook.exact_top_k(ds.queries(), base, first, K, "L2"))  # every true top-k after step 1
    steps = [
        {"operation": "insert", "start": 0, "end": 2000},
        {"operation": "search"},
        {"operation": "delete", "ids": neighbours.tolist()},
        {"operation": "search"},
        {"operation": "insert", "start": 2000, "end": 2500},
        {"operation": "replace", "start": 2000, "end": 2500, "from": 2500},
        {"operation": "search"},
    ]
    (tmp_path / "rb.json").write_text(json.dumps({"steps": steps}))
    out = tmp_path / "out"
    done = run_cli(
        "runbook", "--host", milvus.uri, "--runbook", str(tmp_path / "rb.json"), "--dataset", "synthetic:clustered",
        "--rows", str(ROWS), "--dim", str(DIM), "--seed", "7", "--metric-type", "L2", "--index-type", "FLAT",
        "--search-queries", str(QUERIES), "--collection", "lg_runbook", "--out", str(out),
        "--check-min-recall-p10", "0.9",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "results.json").read_text())
    rb = doc["runbook"]
    searches = [s for s in rb["steps"] if s["operation"] == "search"]
    assert [s["step"] for s in searches] == [2, 4, 7]
    held = 2000 - len(neighbours)
    assert [s["rows"] for s in rb["steps"]] == [2000, 2000, held, held, held + 500, held + 500, held + 500]
    assert searches[0]["truth_changed"] is None and searches[1]["truth_changed"] == 1.0  # every query lost its top-k
    for s in searches:  # FLAT: exact search, so recall against the truth of the moment stays at 1
        assert s["recall"]["count"] == QUERIES
        assert s["recall"]["p10"] >= 0.9 and s["recall"]["min"] >= 0.8 and s["recall"]["mean"] >= 0.95
    assert rb["recall"]["count"] == 3 * QUERIES
    assert doc["recall"]["pymilvus search"] == rb["recall"]  # one figure, two places
    assert doc["checks"]["failed"] == [] and doc["checks"]["set"]["min_recall_p10"] == 0.9
    assert {r["name"]: r["requests"] for r in doc["requests"]} == {"delete": 1, "insert": 3, "search": 3, "upsert": 1}
    assert "all searches: recall mean" in done.stdout and "p10" in done.stdout
    assert not client.has_collection("lg_runbook")  # created by the run, dropped after it
    report = run_cli("report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Recall while data changes" in md and "| 4 | search | " in md and "| 100% |" in md
