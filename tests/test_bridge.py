"""The gevent -> asyncio bridge: results, errors, timeouts, and that waiting greenlets never block the hub."""

from __future__ import annotations

from conftest import run_script


def test_bridge_results_errors_timeouts_and_concurrency() -> None:
    out = run_script("bridge_check.py")
    assert out["value"] == 42
    assert out["error"] == "server said no"
    assert out["timeout_message"] == "no answer within 0.5 s"
    assert 0.45 < out["timeout_elapsed"] < 2.0
    # 20 greenlets x 0.3 s each: concurrent on the loop, not 6 s in sequence
    assert out["concurrent_values"] == list(range(20))
    assert out["concurrent_elapsed"] < 2.0
    # the hub kept running other greenlets while they waited
    assert out["ticks_meanwhile"] >= 10
    assert out["killed_greenlet_cancelled_coroutine"] is True
    # with answer_when_killed: the kill waits for the answer, and the greenlet ends with it (Answered)
    assert out["killed_answered"] == [["answered"], "Answered", 7]
    # grpc.aio's completion queue signals the loop on plain sockets: no gevent hub in the asyncio thread
    assert out["loop_thread_without_gevent_hub"] is True
    assert out["after_aio_channel"] == 9
    # stop(): the waiting greenlet woke with BridgeStopped long before its 30 s timeout; no second loop was started
    assert out["stop_waiter_error"] == "BridgeStopped"
    assert out["stop_woke_waiter_s"] < 5.0
    assert out["after_stop"] == "refused"
    assert out["loop_threads"] == 0


def test_setup_calls_leave_the_hubs_thread_pool_to_grpc() -> None:
    # 1,000 sync users connecting at once queued their constructors ahead of grpc's completion waits on the hub's
    # pool, and the running users' calls took seconds; with setup on a pool of its own the hub's answers at once
    out = run_script("setup_pool_check.py")
    assert out["value"] == "answered"
    assert out["waited_s"] < 5.0  # on the shared pool: 10 s, until the blocked setup calls gave up
    assert out["setup_calls_done"] == 12


def test_users_freeze_what_they_hold_and_a_stop_thaws_it() -> None:
    # 1,000 async users hold ~675,000 objects; every full collection of them stalled the process for 250-500 ms
    out = run_script("heap_check.py")
    assert out["frozen_before"] == 0
    assert out["frozen_running"] > 10_000  # the process's long-lived objects, Locust's and the users' clients
    assert out["requests_running"] > 0  # the users ran calls while frozen
    assert out["frozen_after_stop"] == 0


def test_open_model_users_wait_in_locusts_wait_not_in_a_task() -> None:
    # they napped 1 s in their task: 1,000 users woke 1,000 times a second, and a graceful stop waited for the nap
    out = run_script("paced_wait_check.py")
    assert out["users"] == 20
    assert out["task_runs"] == [1] * 20  # each user's own task ran once; the class's constant(0) pacing did not apply
    assert out["states"] == ["waiting"]  # where Locust stops a user at once
    assert out["requests"] > 0  # the schedules sent meanwhile
    assert out["users_after_stop"] == 0


def test_async_open_model_sends_from_the_loop_and_reports_every_call() -> None:
    # the async users' reads go from the asyncio loop itself (no thread hand-off per call); counts and rows still
    # come out on the hub, and a stop with 50 ms calls in flight reports each one that answered
    out = run_script("loop_sends_check.py")
    assert out["async_on_loop"] == [True] * 6 and out["async_greenlet_schedules"] == 0
    assert out["sync_on_loop"] == [False] * 6  # sync users keep their greenlets
    sent = out["counts"]["fake-async"]
    assert sent["sent"] > 50 and sent["intended"] == sent["sent"] + sent["dropped"] and sent["dropped"] == 0
    assert out["rows"]["fake-async asearch"] == sent["sent"]  # one row per send, none lost at the stop
    assert out["in_flight_at_stop"] > 0 and out["async_calls"] == sent["sent"]  # ... and each send one call
    assert out["rows"]["fake search"] == out["counts"]["fake"]["sent"]
    assert out["failures"] == 0


def test_async_users_with_a_write_keep_the_greenlet_schedule() -> None:
    # an insert stream is a write (bookkeeping of its ids on the hub): those users send from greenlets, as before
    out = run_script("loop_sends_check.py", "--stream-rates", "insert=5")
    assert out["async_on_loop"] == [False] * 6 and out["async_greenlet_schedules"] == 12
    streamed = out["counts"]["fake-async[stream]"]
    assert out["rows"]["fake-async ainsert"] == streamed["sent"] > 0
    assert out["rows"]["fake-async asearch"] == out["counts"]["fake-async"]["sent"]


def test_async_closed_model_tasks_run_on_the_loop_with_the_class_pacing() -> None:
    out = run_script("loop_sends_check.py", "--closed")
    assert out["async_on_loop"] == [True] * 6 and out["sync_on_loop"] == [False] * 6
    single, fanned = out["rows"].get("fake-async asearch", 0), out["rows"].get("fake-async-fanout asearch", 0)
    assert single > 0 and fanned > 0 and out["failures"] == 0
    assert fanned % 4 == 0  # a fan-out's rows are reported together, a stop included
    assert out["in_flight_at_stop"] > 0  # the stop came while a user's call was out ...
    assert single + fanned == out["async_calls"]  # ... and that call answered and has its row
    # constant(0.1) between two tasks: each user's tasks are at least 0.1 s apart (0.15 s with the 50 ms call;
    # without the pacing, 0.05 s apart: twice this bound)
    assert single + fanned // 4 <= 6 * (out["ran_s"] / 0.1 + 1), out


def test_async_users_without_a_wait_still_yield_to_the_loop() -> None:
    # constant(0) and calls that never wait: the users' tasks skip the loop between two calls, but not for long
    # (drivers.loop.YIELD_EVERY): the loop's other tasks still run, a stop still ends them, every call is a row
    out = run_script("loop_yield_check.py", timeout=45)
    assert out["on_loop"] == [True, True]
    assert out["ticks"] >= 3, out  # a 10 ms ticker over 1 s (~10 ticks); without the yield it never ticks again
    assert out["stop_s"] < 5.0 and out["rows"] == out["calls"] > 100, out
