"""`loadgen report` on results files written here (no server): every input form, open-model rate sweeps, worker
scaling, the baseline diff, and one-line errors for input a report cannot use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from loadgen.report import load


def results(users: int, qps: float, p99: float, *, processes: int = 0, rows: int = 1000, **run: Any) -> dict[str, Any]:
    def req(typ: str, name: str, rps: float) -> dict[str, Any]:
        return {"type": typ, "name": name, "requests": int(rps * 10), "failures": 0, "rps": rps, "avg_ms": p99 / 3,
                "p50_ms": p99 / 4, "p90_ms": p99 / 2, "p95_ms": p99 * 0.8, "p99_ms": p99, "min_ms": 0.5,
                "max_ms": p99 * 2}  # fmt: skip

    return {
        "format": "milvus-loadgen/results/v1",
        "run": {"users": users, "processes": processes, "level": {"users": users}, **run},
        "settings": {
            "dim": 32,
            "rows": rows,
            "dataset": "",
            "metric_type": "COSINE",
            "index_type": "HNSW",
            "index_params": {"M": 8},
            "uri": "http://user:secret@10.9.9.9:19530",
        },
        "requests": [
            req("pymilvus", "search", qps),
            req("pymilvus-async", "search", qps * 1.5),
            req("pymilvus-async-batch", "search_fanout[10]", 3.0),  # v1 results: batches not counted
        ],
        "totals": {"requests": 1, "failures": 0, "fail_ratio": 0.0},
        "failures": [],
        "recall": {"pymilvus search": {"mean": 0.97, "count": 10}},
    }


def write(path: Path, doc: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(doc))
    return path


def sweep(path: Path, levels: list[int], *, processes: int = 0, rows: int = 1000) -> Path:
    """A sweep dir as ``loadgen run --sweep-users`` writes it: users-N/results.json and sweep.json."""
    docs = [results(u, min(100.0 * u, 800.0), 2.0 + u, processes=processes, rows=rows) for u in levels]
    for u, doc in zip(levels, docs, strict=True):
        write(path / f"users-{u}", doc)
    levels_doc = [{"level": {"users": u}, **doc} for u, doc in zip(levels, docs, strict=True)]
    (path / "sweep.json").write_text(json.dumps({"format": "milvus-loadgen/sweep/v1", "model": "closed",
                                                 "levels": levels_doc}))  # fmt: skip
    return path


def report(*args: str) -> tuple[int, str, dict[str, Any]]:
    proc = run_cli("report", *args, timeout=120)
    out = Path(args[args.index("--out") + 1]) if "--out" in args else None
    doc = json.loads((out / "report.json").read_text()) if proc.returncode == 0 and out else {}
    return proc.returncode, proc.stderr, doc


def test_sweep_dir_gives_knee_slo_sync_async_and_sizing(tmp_path: Path) -> None:
    src = sweep(tmp_path / "sweep", [1, 2, 4, 8, 12, 16])
    code, err, doc = report(str(src), "--out", str(tmp_path / "r"), "--slo-p99-ms", "12", "--target-qps", "1000")
    assert code == 0, err
    curves = {c["type"]: c for c in doc["analysis"]["curves"]}
    assert set(curves) == {"pymilvus", "pymilvus-async"}  # the fan-out batch is left out
    sync = curves["pymilvus"]
    assert [lv["level"] for lv in sync["levels"]] == [1, 2, 4, 8, 12, 16]  # sweep.json, not also the users-N dirs
    assert sync["knee"] == 8 and sync["slo"]["level"] == 8  # saturates at 8 users; p99 2+8 = 10 ms <= 12 < 14
    assert sync["levels"][0]["recall"] == 0.97
    pair = doc["analysis"]["sync_vs_async"][0]
    assert pair["operation"] == "search" and pair["qps_ratio"] == pytest.approx(1.5)
    (row,) = [r for r in doc["sizing"]["rows"] if r["operation"] == "pymilvus search"]
    assert row["per_replica_qps"] == 800.0 and row["replicas"] == 2  # 1000 / (800 x 0.9 x 0.7) = 1.98
    assert doc["sizing"]["memory"]["bytes_per_replica"] == 1000 * (32 * 4 + 2 * 8 * 4)  # the runs' HNSW M=8
    text = (tmp_path / "r" / "report.md").read_text() + (tmp_path / "r" / "report.html").read_text()
    assert "secret" not in text and "10.9.9.9" not in text  # settings' URI never reaches the report
    assert "## Sizing for 1000 QPS" in text and "knee" in text


def test_rate_sweep_and_loose_results_files_from_jobs(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"  # e.g. copied out of Kubernetes Job pods, one results.json each
    for rate in (50, 100, 200, 400):
        doc = results(0, min(rate, 150.0), 5.0, model="open")
        doc["run"]["level"] = {"rate": rate}
        late = max(rate - 150, 0)  # sends the server could not keep up with
        doc["open_loop"] = {"target_rate": rate, "by_type": {"pymilvus": {"late": late, "dropped": late // 2}}}
        write(jobs / f"pod-{rate}", doc)
    code, err, doc = report(str(jobs), "--out", str(tmp_path / "r"))
    assert code == 0, err
    sync = next(c for c in doc["analysis"]["curves"] if c["type"] == "pymilvus")
    assert sync["kind"] == "rate" and [lv["level"] for lv in sync["levels"]] == [50, 100, 200, 400]
    assert sync["knee"] == 200  # achieved rate flattens at 150 req/s, between 100 and 200 targets
    assert [(lv["late"], lv["dropped"]) for lv in sync["levels"]] == [(0, 0), (0, 0), (50, 25), (250, 125)]
    assert "| pymilvus search | 400 req/s |" in (tmp_path / "r" / "report.md").read_text()


def test_worker_scaling_and_baseline_diff(tmp_path: Path) -> None:
    one = sweep(tmp_path / "w1", [1, 4, 8])
    two = tmp_path / "w2"
    doc2 = results(8, 1400.0, 9.0, processes=2)
    write(two, doc2)
    code, err, doc = report("--baseline", str(one), str(one), str(two), "--out", str(tmp_path / "r"))
    assert code == 0, err
    (w1, w2) = doc["analysis"]["worker_scaling"]["pymilvus search"]
    assert (w1["count"], w2["count"]) == (1, 2) and w2["efficiency"] == pytest.approx(1400 / 800 / 2)
    rows = {(r["operation"], r["level"], r["processes"]): r for r in doc["diff"]["rows"]}
    same = rows[("pymilvus search", 8, 1)]
    assert same["delta"]["qps_pct"] == 0.0 and same["delta"]["recall"] == 0.0
    assert doc["diff"]["only_in_candidate"] == 2  # the 2-worker level has no baseline twin


def test_loads_a_single_results_file_and_a_sweep_file(tmp_path: Path) -> None:
    src = sweep(tmp_path / "s", [1, 2])
    assert len(load.load_path(src / "sweep.json")) == 2
    assert [r.level for r in load.load_path(src / "users-2" / "results.json")] == [("users", 2.0)]
    assert [r.processes for r in load.load_path(src / "users-2")] == [1]  # --processes 0: one process


def test_kubernetes_job_results_count_their_workers(tmp_path: Path) -> None:
    doc = results(20, 500.0, 8.0)  # as `loadgen k8s summarize` writes it: no level, no processes
    doc["run"] = {"mode": "kubernetes-job", "users": 20, "expect_workers": 4, "exit_code": 0}
    (run,) = load.load_path(write(tmp_path / "k8s-run", doc))
    assert (run.level, run.processes, run.replicas) == (("users", 20.0), 4, None)
    doc["run"]["replicas"] = 2
    assert load.load_path(write(tmp_path / "k8s-run2", doc))[0].replicas == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d.mkdir(), "no loadgen results in it"),
        (lambda d: (d.mkdir(), (d / "notes.txt").write_text("hi")), "no loadgen results in it"),
        (lambda d: write(d, {"format": "someone-else/v2", "data": []}), "is not a milvus-loadgen results file"),
        (lambda d: (d.mkdir(), (d / "results.json").write_text("{not json")), "not readable JSON"),
        (lambda d: (d.mkdir(), (d / "sweep.json").write_text("[]")), "is not a milvus-loadgen sweep file"),
        (lambda d: write(d, {**results(1, 1.0, 1.0), "requests": []}), "hold no Milvus requests"),
        (lambda d: None, "no such file or directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, setup: Any, message: str) -> None:
    setup(tmp_path / "in")
    code, err, _ = report(str(tmp_path / "in"), "--out", str(tmp_path / "r"))
    assert code == 2 and err.startswith("loadgen: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_mixed_datasets_are_refused(tmp_path: Path) -> None:
    a = sweep(tmp_path / "a", [1, 2])
    b = sweep(tmp_path / "b", [1, 2], rows=5000)
    for args in ([str(a), str(b)], [str(b), "--baseline", str(a)]):
        code, err, _ = report(*args, "--out", str(tmp_path / "r"))
        assert code == 2 and "different datasets" in err and err.count("\n") == 1
        assert "rows 1000 vs 5000" in err or "rows 5000 vs 1000" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo-p99-ms", "0"], "--slo-p99-ms 0: out of range"),
        (["--headroom", "1.5"], "--headroom 1.5: out of range"),
        (["--target-qps", "10", "--index-params", "[1]"], "--index-params '[1]': expected a JSON object"),
        (["--index", "DISKANN"], "invalid choice"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    src = sweep(tmp_path / "s", [1, 2])
    code, err, _ = report(str(src), *args, "--out", str(tmp_path / "r"))
    assert code == 2 and message in err and err.count("\n") == 1
