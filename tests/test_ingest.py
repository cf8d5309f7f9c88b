"""Ingest readiness against the session Milvus: every write goes ack -> searchable -> indexed in that order and is
counted once per stage, and a real run reports the stages, the index lag and its check."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_cli
from pymilvus import DataType, MilvusClient
from run_report_html import check_same_figures, ms, rows

from loadgen.config.settings import Settings
from loadgen.milvus.server import ServerInfo
from loadgen.stats import checks
from loadgen.stats.ingest import IngestStats, Tracker, lines

pytestmark = pytest.mark.milvus
DIM = 8


def _collection(client: MilvusClient, name: str) -> None:
    client.drop_collection(name)  # a name of this test's own
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    client.load_collection(name)


def _until(done: object, poll: object, what: str, limit: int = 400) -> None:
    for _ in range(limit):  # bounded: 400 polls of at least 20 ms (a Strong query waits longer)
        poll()  # type: ignore[operator]
        if done():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {limit} polls")


def test_each_write_is_searchable_then_indexed_and_counted_once(milvus: ServerInfo, client: MilvusClient) -> None:
    name = "lg_ingest_stages"
    _collection(client, name)
    try:
        stats = IngestStats()
        tracker = Tracker(stats, Settings(uri=milvus.uri, consistency_level="Bounded"), name)
        tracker.client = MilvusClient(uri=milvus.uri, timeout=10, alias="lg-ingest-tracker")  # closed by stop()
        tracker.poll_index()  # the index's count before the writes: the base
        writes = []
        for w in range(4):
            ids = list(range(w * 10, w * 10 + 10))
            client.insert(name, [{"id": i, "vector": [float(i)] * DIM} for i in ids])
            tracker.acked(time.perf_counter(), tuple(ids))
            writes.append(tracker.unseen[-1])
        _until(lambda: not tracker.unseen, tracker.poll_searchable, "every write searchable")
        tracker.poll_index()
        assert all(w.covered is None for w in writes)  # growing segments: not indexed, however long one waits
        client.flush(name)  # sealed: Milvus indexes them (segments this small count as indexed once sealed)
        _until(lambda: not tracker.uncovered and not tracker.waiting, tracker.poll_index, "every write indexed")
        late = tuple(range(100, 105))  # acknowledged, then the test ends before any poll
        client.insert(name, [{"id": i, "vector": [1.0] * DIM} for i in late])
        tracker.acked(time.perf_counter(), late)
        tracker.stop()
        for w in writes:
            assert w.searchable is not None and w.covered is not None
            assert w.ack <= w.searchable  # ack <= searchable <= indexed (the later of searchable and covered)
        res = stats.results("Bounded")
        assert res["writes"] == 5 and res["rows"] == 45
        assert res["searchable"]["count"] + res["not_searchable"] == 5 == res["indexed"]["count"] + res["not_indexed"]
        assert (res["searchable"]["count"], res["indexed"]["count"]) == (4, 4)
        assert res["searchable"]["min_ms"] >= 0 and res["indexed"]["min_ms"] >= 0
        ordered = sorted(max(w.searchable, w.covered) - w.searchable for w in writes)  # type: ignore[type-var]
        assert ordered[0] >= 0
        lag = res["index_lag"]
        assert lag["max_s"] > 0 and lag["max_rows"] >= 40  # before the flush, all 40 rows waited for the index
        assert lines(res)[1].startswith("  searchable: p50 ")
    finally:
        client.drop_collection(name)


def test_a_run_reports_the_stages_and_checks_the_index_lag(milvus: ServerInfo, tmp_path: Path) -> None:
    """Inserts streamed at 10/s, never flushed: every write becomes searchable, none indexed (Milvus indexes sealed
    segments only), so the lag grows with the run and its check fails."""
    proc = run_cli(
        "run", "--host", milvus.uri, "-f", "locustfiles/pymilvus_users.py", "PymilvusUser", "-u", "1", "-t", "5s",
        "--rows", "500", "--dim", "16", "--index-type", "FLAT", "--weights", "search=1", "--stream-rates",
        "insert=10", "--ingest-readiness", "--collection", "lg_ingest_run", "--out", str(tmp_path),
        "--check-max-index-lag-s", "1",
    )  # fmt: skip
    assert proc.returncode == checks.CHECK_FAILED_EXIT_CODE, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    ing = res["ingest"]
    inserts = sum(m["requests"] - m["failures"] for m in res["requests"] if m["name"] == "insert")
    assert ing["writes"] == inserts > 20  # one write per acknowledged insert call
    assert ing["rows"] == 10 * inserts  # --batch-size 10
    assert ing["searchable"]["count"] + ing["not_searchable"] == inserts
    assert ing["searchable"]["count"] >= inserts - 10  # all but (some of) the last second's: the run ended first
    assert 0 < ing["searchable"]["min_ms"] <= ing["searchable"]["p50_ms"] <= ing["searchable"]["max_ms"]
    assert ing["indexed"]["count"] + ing["not_indexed"] == inserts
    assert ing["index_lag"]["max_s"] > 1 and ing["index_lag"]["per_second"]
    failed = res["checks"]["failed"]
    assert len(failed) == 1 and failed[0].startswith("check failed: index lag ") and failed[0].endswith(" > 1 s")
    if not ing["indexed"]["count"]:  # the embedded server took none of the writes into its index within the run
        assert "and growing (nothing indexed)" in failed[0], failed
    assert "ingest readiness (Bounded):" in proc.stdout and "index lag: max" in proc.stdout
    report = run_cli("report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Ingest readiness" in md and f"| searchable | {inserts} | {ing['searchable']['count']} |" in md
    page = check_same_figures(tmp_path)  # the run's report.html (the web UI's page of a run too): the same figures
    shown = {r["stage"]: r for r in rows(page.tables["ingest"][0])}
    assert (shown["searchable"]["reached"], shown["searchable"]["p99 ms"]) == (
        str(ing["searchable"]["count"]), ms(ing["searchable"]["p99_ms"]))  # fmt: skip
    assert shown["indexed"]["not reached"] == str(ing["not_indexed"])


def test_capacity_searches_the_insert_rate_whose_index_lag_stays_bounded(milvus: ServerInfo, tmp_path: Path) -> None:
    """Steps of 4 s whose inserts are never sealed: the lag grows past 1 s in every step, so no insert rate holds,
    and each step says why (the positive answer needs segments that seal within the bound)."""
    out = tmp_path / "cap"
    proc = run_cli(
        "capacity", "--host", milvus.uri, "-f", "locustfiles/pymilvus_users.py",
        "PymilvusUser", "-u", "1", "-t", "4s", "--slo-p99-ms", "10000", "--max-index-lag-s", "1",
        "--start-rate", "4", "--max-steps", "2", "--min-samples", "1", "--rows", "300", "--dim", "16",
        "--index-type", "FLAT", "--weights", "search=1", "--collection", "lg_ingest_cap", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "capacity.json").read_text())
    assert doc["answer"] is None and doc["slo"]["max_index_lag_s"] == 1
    assert [s["rate"] for s in doc["steps"]] == [4, 2]
    for s in doc["steps"]:
        # a step whose writes the index never took has no bounded lag (null), and says so; else its lag is above 1 s
        unbounded = s["index_lag_s"] is None and "nothing indexed within the step: its index lag only grew" in s["why"]
        assert unbounded or (s["index_lag_s"] > 1 and any(w.startswith("index lag ") and w.endswith("> 1 s")
                                                          for w in s["why"])), s  # fmt: skip
    step = json.loads((out / "insert-rate-4" / "results.json").read_text())
    assert step["run"]["insert_rate"] == 4 and step["ingest"]["writes"] > 0
    assert step["open_loop"]["by_type"]  # the insert stream's sends
    assert "capacity: no rate held index lag <= 1 s, p99 <= 10000 ms" in proc.stdout
