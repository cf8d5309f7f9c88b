"""A flow: several steps of a user's own code (embed, retrieve, rerank, generate ...) reported as ONE request row.

``with user.flow("rag") as steps:`` (or ``async with``) times the whole block with ``perf_counter``; ``steps.mark(
"retrieve")`` closes a step: the time since the flow began or since the previous mark. The row (request type
``flow``, name = the flow's name) carries the steps in ``context["steps"]``; ``loadgen.stats.flows`` turns them into
a statistic of their own. The steps add up to the row's time: the time after the last mark is the step ``(rest)``.

A flow that raises is a failed row with the error's text (the error then propagates, marked as reported so the task
runner does not count it again). A flow cancelled by its task's deadline is a failed row too (``CallTimeout``); one
cancelled because the user is stopping is not reported.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from loadgen.clients.timed import Reporter, current_task, mark_reported
from loadgen.errors import CallTimeout
from loadgen.stats import tracing
from loadgen.stats.flows import FLOW_TYPE
from loadgen.stats.timing import Sample

REST = "(rest)"


class Flow:
    def __init__(self, name: str, reporter: Reporter, timeout: float) -> None:
        self.name = name
        self._reporter = reporter
        self._timeout = timeout
        self.steps: dict[str, float] = {}
        self._start = self._last = 0.0
        self._span: Any = None  # --otel: the flow's parent span, its steps child spans (loadgen.stats.tracing)
        self._token: Any = None
        self._clock = (0.0, 0)

    def mark(self, step: str) -> float:
        """End the step ``step`` now; returns its milliseconds. Marking a name again adds to it."""
        now = time.perf_counter()
        ms = (now - self._last) * 1000.0
        if self._span is not None:
            tracing.flow_step(self._span, step, self._last, now, self._clock)
        self.steps[step] = self.steps.get(step, 0.0) + ms
        self._last = now
        return ms

    # ---- both forms -------------------------------------------------------------------------------------------
    def _begin(self) -> Flow:
        if tracing.enabled():
            self._span, self._token = tracing.open_flow(self.name)
            self._clock = (time.perf_counter(), time.time_ns())
        self._start = self._last = time.perf_counter()
        return self

    def _end(self, exc: BaseException | None) -> None:
        end = time.perf_counter()
        if self.steps:
            self.steps[REST] = self.steps.get(REST, 0.0) + (end - self._last) * 1000.0
            if self._span is not None:
                tracing.flow_step(self._span, REST, self._last, end, self._clock)
        if self._span is not None:
            tracing.close_flow(self._span, self._token, exc)
            self._span = None
        error: BaseException | None = None
        if isinstance(exc, asyncio.CancelledError):
            state = current_task.get()
            if state is None or not state.deadline_hit:
                return  # the user is stopping: not a result
            state.deadline_reported = True
            error = CallTimeout(f"flow {self.name} ran past --timeout {self._timeout:g} s")
        elif isinstance(exc, Exception):
            error = exc
        elif exc is not None:  # GreenletExit, KeyboardInterrupt: the run is ending, not a result
            return
        sample = Sample(None, (end - self._start) * 1000.0, error, 0.0, self._start)
        self._reporter(FLOW_TYPE, self.name, sample, {"steps": dict(self.steps)})
        if exc is not None and error is exc:
            mark_reported(exc)

    # ---- with / async with ------------------------------------------------------------------------------------
    def __enter__(self) -> Flow:
        return self._begin()

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._end(exc)

    async def __aenter__(self) -> Flow:
        return self._begin()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._end(exc)
