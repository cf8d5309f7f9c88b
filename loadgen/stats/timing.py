"""The one place that times calls (``time.perf_counter``) and reports them to Locust as float milliseconds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loadgen.workload.embeddings import metered


@dataclass(frozen=True)
class Sample:
    """One measured call: how much came back, how long it took, what went wrong if anything did, and how much of
    the time went into computing embeddings (see ``loadgen.workload.embeddings.metered``)."""

    length: int
    elapsed_ms: float
    error: BaseException | None = None
    embed_ms: float = 0.0
    start: float = 0.0  # perf_counter() when the call began (open model: latency counts from the intended time)


def measure(fn: Callable[..., int], *args: Any, **kwargs: Any) -> Sample:
    with metered() as embed:
        start = time.perf_counter()
        try:
            length = fn(*args, **kwargs)
        except Exception as exc:  # every failure is a measured, reported failure
            return Sample(0, (time.perf_counter() - start) * 1000.0, exc, sum(embed), start)
        return Sample(length, (time.perf_counter() - start) * 1000.0, None, sum(embed), start)


async def ameasure(awaitable: Awaitable[int], timeout: float | None = None) -> Sample:
    """Times the await on the event loop itself, so the greenlet/loop hand-off is not counted.

    ``timeout`` is enforced here too: some pymilvus async paths (the first call's handshake) carry no deadline.
    """
    import asyncio

    from loadgen.errors import CallTimeout

    with metered() as embed:
        start = time.perf_counter()
        try:
            length = await (asyncio.wait_for(awaitable, timeout) if timeout else awaitable)
        except TimeoutError:
            elapsed = (time.perf_counter() - start) * 1000.0
            return Sample(0, elapsed, CallTimeout(f"no answer within {timeout:g} s"), sum(embed), start)
        except Exception as exc:
            return Sample(0, (time.perf_counter() - start) * 1000.0, exc, sum(embed), start)
        return Sample(length, (time.perf_counter() - start) * 1000.0, None, sum(embed), start)


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
    events: Any, request_type: str, name: str, sample: Sample, context: dict[str, Any], *, intended: float | None = None
) -> None:
    """One request for the store call; when embeddings were computed, their time is reported apart (request type
    ``embedding``, same name) and left out of the store call's time, so a user sees where the time goes.

    ``intended``: the open model's scheduled send time (perf_counter seconds). The reported time then runs from it,
    not from the call's start (coordinated omission corrected); the call's own time rides along as ``service_ms``.
    """
    queued_ms = 0.0
    if intended is not None:
        queued_ms = max((sample.start - intended) * 1000.0, 0.0) if sample.start else 0.0
        context = {**context, "service_ms": sample.elapsed_ms - sample.embed_ms, "queued_ms": queued_ms}
    if sample.embed_ms:
        context = {**context, "embed_ms": sample.embed_ms, "total_ms": sample.elapsed_ms}
        events.request.fire(
            request_type="embedding",
            name=name,
            response_time=sample.embed_ms,
            response_length=0,
            exception=None,
            context=context,
        )
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=sample.elapsed_ms - sample.embed_ms + queued_ms,
        response_length=sample.length,
        exception=ReportedError(sample.error) if sample.error is not None else None,
        context=context,
    )


async def ameasure_many(awaitables: list[Awaitable[int]], timeout: float | None = None) -> tuple[list[Sample], Sample]:
    """Gather concurrent calls: a sample per call, and one for the batch (failed if any call failed)."""
    import asyncio

    start = time.perf_counter()
    samples = await asyncio.gather(*(ameasure(a, timeout) for a in awaitables))
    elapsed = (time.perf_counter() - start) * 1000.0
    error = next((s.error for s in samples if s.error is not None), None)
    return list(samples), Sample(sum(s.length for s in samples), elapsed, error)


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
    import asyncio

    start = time.perf_counter()
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    elapsed = (time.perf_counter() - start) * 1000.0
    return elapsed, [r if isinstance(r, BaseException) else None for r in results]
