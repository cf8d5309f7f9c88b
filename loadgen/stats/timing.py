"""The one place that times calls (``time.perf_counter``) and reports them to Locust as float milliseconds.

A request row is one real store call. What else a call measured rides along in the request's ``context`` and
becomes a statistic of its own (``loadgen.stats.histograms``): the time spent computing embeddings inside it
(``embed_ms``, left out of the call's own time), and, in the open model, the call's own time (``service_ms``) next to
the latency counted from its intended send time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loadgen.errors import CallTimeout
from loadgen.workload.embeddings import metered


@dataclass(slots=True)  # not frozen: one per call, and a frozen one costs four times as much to make
class Sample:
    """One measured call: what it returned, how long it took, what went wrong if anything did, how much of the
    time went into computing embeddings (see ``loadgen.workload.embeddings.metered``) and when it began. Not
    changed once made (``failed`` makes another)."""

    value: Any
    elapsed_ms: float
    error: BaseException | None = None
    embed_ms: float = 0.0
    start: float = 0.0  # perf_counter() when the call began (open model: latency counts from the intended time)

    def failed(self, error: BaseException) -> Sample:
        return Sample(None, self.elapsed_ms, error, self.embed_ms, self.start)


def measure(fn: Callable[..., Any], *args: Any) -> Sample:
    with metered() as embed:
        start = time.perf_counter()
        try:
            value = fn(*args)
        except Exception as exc:  # every failure is a measured, reported failure
            return Sample(None, (time.perf_counter() - start) * 1000.0, exc, sum(embed), start)
        return Sample(value, (time.perf_counter() - start) * 1000.0, None, sum(embed), start)


async def ameasure(make: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Sample:
    """Times the await on the event loop itself, so the greenlet/loop hand-off is not counted. ``make`` creates the
    awaitable here, on the loop (a library may bind what it creates to the running loop).

    ``timeout`` is enforced here too: some pymilvus async paths (the first call's handshake) carry no deadline.
    """
    with metered() as embed:
        start = time.perf_counter()
        try:
            awaitable = make()
            if timeout:  # asyncio.timeout, not wait_for: in 3.11 wait_for runs the call in a task of its own
                async with asyncio.timeout(timeout):
                    value = await awaitable
            else:
                value = await awaitable
        except TimeoutError:
            elapsed = (time.perf_counter() - start) * 1000.0
            return Sample(None, elapsed, CallTimeout(f"no answer within {timeout:g} s"), sum(embed), start)
        except Exception as exc:
            return Sample(None, (time.perf_counter() - start) * 1000.0, exc, sum(embed), start)
        return Sample(value, (time.perf_counter() - start) * 1000.0, None, sum(embed), start)


async def ameasure_many(
    makers: Sequence[Callable[[], Awaitable[Any]]], timeout: float | None = None
) -> tuple[list[Sample], float]:
    """Gather concurrent calls: a sample per call, and the milliseconds the whole batch took."""
    start = time.perf_counter()
    samples = await asyncio.gather(*(ameasure(m, timeout) for m in makers))
    return list(samples), (time.perf_counter() - start) * 1000.0


class ReportedError(Exception):
    """What Locust records for a failed request. Locust shows ``repr(error)``, and some exceptions (pymilvus's
    MilvusException) have a bare repr: this one carries the type, code and the server's message."""

    def __init__(self, error: BaseException) -> None:
        message = getattr(error, "message", None)
        code = getattr(error, "code", None)
        if callable(code):  # a grpc error (bare, or wrapped by pymilvus with the grpc method as its code)
            source = error if hasattr(error, "details") else code.__self__
            code = getattr(code(), "name", code())
            if not message or "<" in str(message):  # pymilvus put the grpc error's multi-line repr there
                message = source.details()
        if message:
            self.text = f"{type(error).__name__}(code={code}, message={' '.join(str(message).split())!r})"
        else:
            self.text = " ".join(repr(error).split())  # one line: Locust's failure table is keyed by this text
        super().__init__(self.text)

    def __repr__(self) -> str:
        return self.text


def report(
    events: Any,
    request_type: str,
    name: str,
    sample: Sample,
    *,
    length: int,
    context: dict[str, Any],
    intended: float | None = None,
) -> None:
    """One request row for one store call. Embedding time is left out of the call's time and rides along as
    ``embed_ms`` (a statistic of its own, never a row).

    ``intended``: the open model's scheduled send time (perf_counter seconds). The reported time then runs from it,
    not from the call's start (coordinated omission corrected); the call's own time rides along as ``service_ms``.
    """
    own_ms = sample.elapsed_ms - sample.embed_ms
    queued_ms = 0.0
    if intended is not None:
        queued_ms = max((sample.start - intended) * 1000.0, 0.0) if sample.start else 0.0
        context = {**context, "service_ms": own_ms, "queued_ms": queued_ms}
    if sample.embed_ms:
        context = {**context, "embed_ms": sample.embed_ms}
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=own_ms + queued_ms,
        response_length=length,
        exception=ReportedError(sample.error) if sample.error is not None else None,
        context=context,
    )


def measure_sequence(calls: list[Callable[[], Any]]) -> tuple[float, list[BaseException | None]]:
    """Run ``calls`` one after another; total milliseconds and each call's error (None when it succeeded)."""
    errors: list[BaseException | None] = []
    start = time.perf_counter()
    for call in calls:
        try:
            call()
            errors.append(None)
        except Exception as exc:
            errors.append(exc)
    return (time.perf_counter() - start) * 1000.0, errors


async def ameasure_gather(awaitables: list[Awaitable[Any]]) -> tuple[float, list[BaseException | None]]:
    """Await ``awaitables`` all at once (``asyncio.gather``); total milliseconds and each one's error."""
    start = time.perf_counter()
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    elapsed = (time.perf_counter() - start) * 1000.0
    return elapsed, [r if isinstance(r, BaseException) else None for r in results]
