"""The open model's own logic: schedules, rate parsing, counts merged from workers, the results section."""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from loadgen.cli import sweep
from loadgen.cli.main import _parse
from loadgen.cli.run import sweep_levels as _levels
from loadgen.clients import check_task_names
from loadgen.config.settings import Settings
from loadgen.config.values import rate, stream_rates
from loadgen.config.workload_file import defaults_from
from loadgen.errors import LoadgenError
from loadgen.stats import results as summary
from loadgen.stats.arrivals import ArrivalStats, summarize
from loadgen.workload.arrival_rate import Counts, Pacer


def test_uniform_schedule_is_exact_and_never_drifts() -> None:
    pacer = Pacer(200.0, start=100.0)
    due = pacer.due(100.0 + 30.0)  # 30 s at 200/s: slots at 0, 1/200, ..., 30.0
    assert len(due) == 6001
    assert due[0] == 100.0 and math.isclose(due[-1], 130.0)
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert max(gaps) - min(gaps) < 1e-9  # from start, not accumulated: no rounding drift over thousands of slots
    assert pacer.next_due > 130.0 and pacer.due(130.0) == []


def test_late_generator_catches_up_without_skipping() -> None:
    pacer = Pacer(10.0, start=0.0)
    assert pacer.due(-1.0) == []
    assert len(pacer.due(0.95)) == 10  # woke up almost a second late: every missed slot is still sent
    assert len(pacer.due(1.0)) == 1


def test_poisson_schedule_has_the_right_mean_and_is_seeded() -> None:
    a = Pacer(100.0, process="poisson", seed=7, start=0.0).due(200.0)
    b = Pacer(100.0, process="poisson", seed=7, start=0.0).due(200.0)
    assert a == b
    assert abs(len(a) / 200.0 - 100.0) < 3.0  # 20,000 expected events: 3 % is > 4 standard deviations
    gaps = sorted(y - x for x, y in itertools.pairwise(a))
    assert gaps[len(gaps) // 2] < 0.01 * 0.8  # exponential gaps: the median is ln 2 / rate, well below the mean


@pytest.mark.parametrize("bad", ["-5", "abc", "nan", "inf"])
def test_bad_rates_are_one_line_errors(bad: str) -> None:
    with pytest.raises(LoadgenError, match="--arrival-rate"):
        rate(bad, "--arrival-rate")


def test_stream_rates() -> None:
    assert stream_rates("insert=20, delete=2.5,upsert=0") == {"insert": 20.0, "delete": 2.5}
    for bad, message in [
        ("insert", "not op=<requests per second>"),
        ("frobnicate=3", "unknown operation 'frobnicate'"),
        ("insert=-1", "0 or more"),
        ("fanout=2", "unknown operation 'fanout'"),
    ]:
        with pytest.raises(LoadgenError, match=message):
            check_task_names({}, stream_rates(bad))


def test_settings_and_levels_from_flags(tmp_path: Path) -> None:
    args = _parse(["run", "--arrival-rate", "150", "--stream-rates", "insert=10", "--max-in-flight", "8"])
    s = Settings.from_options(args, "http://127.0.0.1:1")
    assert (s.arrival_rate, s.stream_rates, s.max_in_flight) == (150.0, {"insert": 10.0}, 8)
    assert _levels(_parse(["sweep", "--rates", "50,100.5"])) == [{"rate": 50.0}, {"rate": 100.5}]
    assert _levels(_parse(["sweep", "--users", "1,5"])) == [{"users": 1}, {"users": 5}]
    assert _levels(_parse(["run"])) == [{}]
    with pytest.raises(LoadgenError, match="exclude each other"):
        _levels(_parse(["run", "--sweep-users", "1", "--sweep-rates", "5"]))
    with pytest.raises(LoadgenError, match="positive requests per second"):
        sweep.parse_rates("0,10")
    with pytest.raises(LoadgenError, match="--max-in-flight must be at least 1"):
        Settings.from_options(_parse(["run", "--max-in-flight", "0"]), "http://127.0.0.1:1")
    wl = tmp_path / "churn.toml"
    wl.write_text("arrival_rate = 80\n[stream_rates]\nupsert = 10\ndelete = 10\n")
    parser = argparse.ArgumentParser()
    from loadgen.config.settings import add_options

    add_options(parser, locust=False)
    assert defaults_from(wl, parser) == {"arrival_rate": 80.0, "stream_rates": "upsert=10,delete=10"}


class _Runner:  # what MergedListener asks of a runner: only whether it is a worker
    pass


class _Events:
    def __getattr__(self, name: str) -> Any:
        class _Hook:
            def add_listener(self, fn: Any) -> None:
                pass

        return _Hook()


class _Env:
    def __init__(self) -> None:
        self.events = _Events()
        self.runner = _Runner()


def test_counts_merge_across_workers_and_summarize() -> None:
    w1, w2, master = ArrivalStats(_Env()), ArrivalStats(_Env()), ArrivalStats(_Env())
    for stats, (start, end, sent) in ((w1, (10.0, 20.0, 500)), (w2, (10.5, 20.5, 480))):
        c = stats.of("pymilvus")
        c.target_rate, c.intended, c.sent, c.late, c.dropped = 50.0, 500, sent, 3, 500 - sent
        c.lag_sum_ms, c.lag_max_ms, c.window_start, c.window_end = sent * 2.0, 40.0, start, end
        stats.of("pymilvus[stream]").add(Counts(target_rate=5, intended=50, sent=50, streams={"insert": 5.0}))
    for worker in (w1, w2):
        master.merge_payload(worker.to_payload())
        worker.reset()
        assert not worker.has_data()
    by_type = master.results()["by_type"]
    main = by_type["pymilvus"]
    got = (main["target_rate"], main["intended"], main["sent"], main["late"], main["dropped"])
    assert got == (100, 1000, 980, 6, 20)
    assert main["window_s"] == 10.5 and main["max_send_lag_ms"] == 40.0 and main["mean_send_lag_ms"] == 2.0
    assert by_type["pymilvus[stream]"]["streams"] == {"insert": 10.0}
    with pytest.raises(ValueError, match="not a loadgen arrivals payload"):
        master.merge_payload({"format": "x"})


def test_open_loop_section_totals_main_schedules_only() -> None:
    counts = {
        "pymilvus": Counts(target_rate=100, intended=1000, sent=1000, window_start=0.0, window_end=10.0),
        "pymilvus-async": Counts(
            target_rate=100, intended=1000, sent=990, dropped=10, window_start=0.1, window_end=10.1
        ),
        "pymilvus[stream]": Counts(target_rate=10, intended=100, sent=100, window_start=0.0, window_end=10.0),
    }
    section = summary.open_loop_section({"by_type": summarize(counts)}, 200.0)
    assert (section["target_rate"], section["sent"], section["dropped"]) == (200.0, 1990, 10)
    assert math.isclose(section["window_s"], 10.1) and math.isclose(section["achieved_rate"], 1990 / 10.1)
    assert summary.open_loop_section({}, 0.0) == {}
