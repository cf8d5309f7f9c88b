"""Unit tests of the microsecond latency histograms, their Locust listener, and the CI checks (no Milvus).

Locust is imported lazily, with ``LOCUST_SKIP_MONKEY_PATCH=1`` and without ``loadgen.runtime``: langsmith's pytest
plugin imports urllib3 before any test module, and gevent patching ssl after that makes ``import locust`` recurse in
``SSLContext.minimum_version``; patching the pytest process would also change grpc for every later test. The listener
needs no cooperative I/O, so an unpatched process tests it faithfully.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadgen.stats.checks import CHECK_FAILED_EXIT_CODE, Checks, evaluate, exit_code, qps
from loadgen.stats.histograms import PERCENTILES, REPORT_KEY, HistogramListener, LatencyHistograms


def lognormal_ms(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(0.5, 0.6) for _ in range(n)]  # ~1-3 ms, with a tail


def filled(samples: list[float], request_type: str = "pymilvus", name: str = "search") -> LatencyHistograms:
    h = LatencyHistograms()
    for ms in samples:
        h.record(request_type, name, ms)
    return h


def test_sub_millisecond_values_keep_microsecond_resolution() -> None:
    h = filled([1.234] * 10 + [0.25] * 5)
    p = h.percentiles("pymilvus", "search")
    assert p["count"] == 15
    assert p["p50_ms"] == pytest.approx(1.234, abs=0.01)
    assert p["min_ms"] == pytest.approx(0.25, abs=0.001)
    assert p["max_ms"] == pytest.approx(1.234, abs=0.001)
    assert p["mean_ms"] == pytest.approx((1.234 * 10 + 0.25 * 5) / 15, abs=0.001)


def test_unknown_key_and_odd_values() -> None:
    h = LatencyHistograms()
    assert not h
    assert h.percentiles("x", "y")["count"] == 0
    h.record("x", "y", float("nan"))
    h.record("x", "y", 10 * 3600 * 1000.0)  # 10 h: clamped to the 10 min ceiling, not lost
    p = h.percentiles("x", "y")
    assert p["count"] == 1
    assert p["max_ms"] == pytest.approx(600_000, rel=1e-3)


def test_merged_workers_equal_one_histogram_of_all_samples() -> None:
    a, b = lognormal_ms(1, 3000), lognormal_ms(2, 2000)
    worker1, worker2 = filled(a), filled(b)
    worker2.record("pymilvus", "insert", 7.5)  # a key only one worker has
    merged = LatencyHistograms()
    for w in (worker1, worker2):
        merged.merge(LatencyHistograms.from_payload(json.loads(json.dumps(w.to_payload()))))
    union = filled(a + b)
    union.record("pymilvus", "insert", 7.5)
    assert merged.request_keys() == union.request_keys() == [("pymilvus", "insert"), ("pymilvus", "search")]
    for key in union.request_keys():
        assert merged.percentiles(*key) == union.percentiles(*key)  # exactly, HDR buckets are deterministic
    assert merged.summary() == union.summary()


def test_payload_round_trip_and_reset() -> None:
    h = filled(lognormal_ms(3, 500))
    again = LatencyHistograms.from_payload(json.loads(json.dumps(h.to_payload())))
    assert again.percentiles("pymilvus", "search") == h.percentiles("pymilvus", "search")
    h.reset()
    assert not h
    assert h.to_payload()["series"] == []
    with pytest.raises(ValueError, match="not a loadgen histogram payload"):
        LatencyHistograms.from_payload({"series": []})


def test_percentiles_agree_with_numpy_within_hdr_precision() -> None:
    samples = lognormal_ms(4, 20_001)  # q * n / 100 is never a whole rank: HDR and numpy pick the same sample
    p = filled(samples).percentiles("pymilvus", "search")
    as_recorded = np.round(np.array(samples) * 1000.0) / 1000.0  # what is recorded: whole microseconds
    for key, q in PERCENTILES.items():
        expected = float(np.percentile(as_recorded, q, method="inverted_cdf"))
        assert p[key] == pytest.approx(expected, rel=1e-3), key
    assert p["max_ms"] == pytest.approx(max(samples), rel=1e-3)
    assert p["mean_ms"] == pytest.approx(float(np.mean(samples)), rel=1e-4)


# --- the listener in a real Locust Environment (LocalRunner, no network) ---


@pytest.fixture
def make_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")  # read once, when locust is first imported
    from locust.env import Environment
    from locust.event import Events

    envs: list[Any] = []

    def make() -> Any:
        env = Environment(events=Events())  # own events: nothing leaks to or from other tests
        env.create_local_runner()
        envs.append(env)
        return env

    yield make
    for env in envs:
        assert env.runner is not None
        env.runner.greenlet.kill(block=True)


def fire(env: Any, ms: float, name: str = "search", error: Exception | None = None) -> None:
    env.events.request.fire(
        request_type="pymilvus", name=name, response_time=ms, response_length=1, exception=error, context={}
    )


def test_local_runner_writes_percentiles_of_successes_only(make_env: Any, tmp_path: Path) -> None:
    env = make_env()
    out = tmp_path / "out" / "latency.json"
    listener = HistogramListener(env, out_path=out)
    fire(env, 99.0)  # before test_start: forgotten
    env.events.test_start.fire(environment=env)
    samples = lognormal_ms(5, 300)
    for i, ms in enumerate(samples):
        fire(env, ms)
        if i % 3 == 0:
            fire(env, 500.0, error=RuntimeError("boom"))  # failures are not latencies
    env.events.quitting.fire(environment=env)

    written = json.loads(out.read_text())
    assert written["format"] == "milvus-loadgen/latency/v1"
    [entry] = written["requests"]
    assert (entry["type"], entry["name"], entry["count"]) == ("pymilvus", "search", 300)
    assert entry == {"type": "pymilvus", "name": "search", **filled(samples).percentiles("pymilvus", "search")}
    assert entry["max_ms"] < 100
    assert LatencyHistograms.from_payload(written["histograms"]).summary() == written["requests"]
    assert listener.histograms.summary() == written["requests"]


def test_no_out_path_writes_nothing(make_env: Any, tmp_path: Path) -> None:
    env = make_env()
    listener = HistogramListener(env, out_path=None)
    fire(env, 1.5)
    env.events.test_stop.fire(environment=env)
    assert list(tmp_path.iterdir()) == []
    assert listener.histograms.percentiles("pymilvus", "search")["count"] == 1


def test_workers_send_deltas_and_master_merges(make_env: Any, tmp_path: Path) -> None:
    master_env, w1_env, w2_env = make_env(), make_env(), make_env()
    out = tmp_path / "latency.json"
    master = HistogramListener(master_env, out_path=out)
    w1, w2 = HistogramListener(w1_env), HistogramListener(w2_env)
    master_env.events.test_start.fire(environment=master_env)
    first, second, third = lognormal_ms(6, 200), lognormal_ms(7, 150), lognormal_ms(8, 100)

    def report(env: Any, listener: HistogramListener, client_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {}
        env.events.report_to_master.fire(client_id=client_id, data=data)
        wire = json.loads(json.dumps(data))  # as if through the socket
        master_env.events.worker_report.fire(client_id=client_id, data=wire)
        return data

    for ms in first:
        fire(w1_env, ms)
    for ms in second:
        fire(w2_env, ms)
    assert REPORT_KEY in report(w1_env, w1, "w1")
    assert not w1.histograms  # each report is a delta
    assert REPORT_KEY not in report(w1_env, w1, "w1")  # nothing new: nothing sent
    for ms in third:
        fire(w1_env, ms)
    report(w1_env, w1, "w1")
    report(w2_env, w2, "w2")
    master_env.events.worker_report.fire(client_id="w3", data={REPORT_KEY: {"format": "other"}})  # ignored
    master_env.events.quitting.fire(environment=master_env)

    union = filled(first + second + third)
    [entry] = json.loads(out.read_text())["requests"]
    assert entry == {"type": "pymilvus", "name": "search", **union.percentiles("pymilvus", "search")}
    assert master.histograms.summary() == union.summary()


# --- CI checks on hand-made results (the shape of loadgen.stats.results.build) ---


def results(
    p99: tuple[float, ...] = (2.0,), rps: float = 100.0, fails: int = 0, recall: Any = None, embed: bool = False
) -> dict[str, Any]:
    requests = [
        {"type": "pymilvus", "name": f"search{i}", "requests": 1000, "failures": 0, "rps": rps, "p99_ms": p}
        for i, p in enumerate(p99)
    ]
    if embed:
        requests.append(
            {"type": "embedding", "name": "search0", "requests": 1000, "failures": 0, "rps": rps, "p99_ms": 1}
        )
    n = 1000 * len(p99)
    out: dict[str, Any] = {
        "requests": requests,
        "totals": {"requests": n, "failures": fails, "fail_ratio": fails / n},
        "failures": [],
    }
    if recall is not None:
        out["recall"] = recall
    return out


def test_no_checks_set_passes_everything() -> None:
    assert not Checks()
    assert evaluate(Checks(), results(p99=(1e9,), rps=0, fails=1000)) == []
    assert exit_code([]) == 0


def test_p99_check() -> None:
    assert evaluate(Checks(p99_ms=10), results(p99=(9.9, 10.0))) == []
    failed = evaluate(Checks(p99_ms=10), results(p99=(3.0, 12.3)))
    assert failed == ["check failed: p99 12.3 ms > 10 ms (pymilvus search1)"]


def test_fail_ratio_check() -> None:
    assert evaluate(Checks(fail_ratio=0.01), results(fails=10)) == []
    [line] = evaluate(Checks(fail_ratio=0.01), results(fails=25))
    assert line == "check failed: fail ratio 2.50% > 1.00% (25 of 1000 requests)"


def test_min_qps_check_reads_the_total_and_v1_sums_rates_without_embedding_entries() -> None:
    r = results(p99=(1.0, 1.0), rps=60.0, embed=True)  # a v1 document: no totals.qps
    assert qps(r) == 120.0
    assert qps({**r, "totals": {**r["totals"], "qps": 7.5}}) == 7.5  # v2: the one figure, from stats.figures
    assert evaluate(Checks(min_qps=120), r) == []
    assert evaluate(Checks(min_qps=150), r) == ["check failed: throughput 120 req/s < 150 req/s"]


def test_min_recall_check() -> None:
    assert evaluate(Checks(min_recall=0.9), results(recall=0.95)) == []
    assert evaluate(Checks(min_recall=0.9), results(recall={"mean": 0.85})) == ["check failed: recall 0.85 < 0.9"]
    per_name = results(recall={"search0": 0.99, "search1": {"mean": 0.5}})
    assert evaluate(Checks(min_recall=0.9), per_name) == ["check failed: recall 0.5 < 0.9 (search1)"]
    [line] = evaluate(Checks(min_recall=0.9), results())
    assert "no recall measured" in line


def test_every_failure_is_one_line_and_exit_code_is_3() -> None:
    checks = Checks(p99_ms=1, fail_ratio=0, min_qps=1e6, min_recall=0.99)
    r = results(p99=(5.0,), fails=3)
    r["requests"][0]["name"] = "multi\nline name"
    failed = evaluate(checks, r)
    assert len(failed) == 4
    assert all("\n" not in line and line.startswith("check failed: ") for line in failed)
    assert CHECK_FAILED_EXIT_CODE == 3
    assert exit_code(failed) == 3
