"""Unit tests of the async timer (stats.timing.ameasure): its deadline and what it costs per call."""

from __future__ import annotations

import asyncio

from loadgen.errors import CallTimeout
from loadgen.stats.timing import ameasure


def test_ameasure_times_out_cancels_the_call_and_runs_no_task_of_its_own() -> None:
    seen: dict[str, object] = {}

    async def slow() -> str:
        seen["tasks"] = len(asyncio.all_tasks())  # the caller's task only: the deadline adds none
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        return "late"

    async def fast() -> str:
        seen["fast_tasks"] = len(asyncio.all_tasks())
        return "ok"

    async def main() -> tuple[object, object]:
        return await ameasure(slow, 0.2), await ameasure(fast, 1.0)

    late, ok = asyncio.run(main())
    assert isinstance(late.error, CallTimeout) and str(late.error) == "no answer within 0.2 s"
    assert late.value is None and 190.0 <= late.elapsed_ms < 2000.0
    assert seen["cancelled"] is True  # the call itself was cancelled at the deadline, not left running
    assert seen["tasks"] == 1 and seen["fast_tasks"] == 1  # asyncio.wait_for (3.11) ran each call in a second task
    assert ok.error is None and ok.value == "ok"


def test_ameasure_reports_the_calls_own_error() -> None:
    async def bad() -> None:
        raise ValueError("server said no")

    sample = asyncio.run(ameasure(bad, 1.0))
    assert isinstance(sample.error, ValueError) and str(sample.error) == "server said no"
