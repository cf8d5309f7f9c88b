"""OpenTelemetry spans for store calls (Locust's ``--otel``): one client span per store call, the library's gRPC
calls as its children, the W3C trace context sent to Milvus, OTLP export configured by the standard ``OTEL_*``
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, ``OTEL_SERVICE_NAME`` ...).

Sampling, so a long run does not flood a collector: every store call is recorded, and its trace is exported when
it failed, when it is among its row's slowest (at or above the row's running p99 over its last calls, or
``--otel-slow-ms``), or when it was drawn at the call's start (``--otel-sample``, a fraction). Only a drawn call
tells Milvus to trace it (the ``sampled`` flag of the context it sends): Milvus decides when the call arrives, so
its own spans exist for the drawn share, and a failure or a slow call kept afterwards shows the client's side.

Off unless ``--otel`` is given: then ``install`` sets a tracer provider of loadgen's own (Locust's ``--otel`` sets
up its own for HTTP users; ours exports the store calls) and instruments gRPC before any client connects.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from loadgen.errors import LoadgenError

log = logging.getLogger(__name__)

SERVICE = "loadgen"
STORE_ATTR = "loadgen.layer"  # set on every store call's span (and a flow's): the sampler's mark of a root of ours


class _On:
    """This process's tracing, once ``install`` ran: the store calls' tracer and the processor that keeps traces."""

    tracer: Any = None
    keeper: Any = None


def enabled() -> bool:
    return _On.tracer is not None


def install(sample: float, slow_ms: float | None) -> None:
    """Turn tracing on in this process (idempotent): the provider, the exporter, gRPC's client instrumentation."""
    if _On.tracer is not None:
        return
    if not 0.0 <= sample <= 1.0:
        raise LoadgenError(f"--otel-sample must be between 0 and 1, got {sample}")
    try:
        from loadgen.stats import otel_sdk
    except ImportError as exc:  # pragma: no cover - installed with loadgen
        raise LoadgenError(f"--otel needs the OpenTelemetry SDK ({exc.name} is missing): pip install -e .") from None
    _On.tracer, _On.keeper = otel_sdk.provide(os.environ.get("OTEL_SERVICE_NAME", SERVICE), sample, slow_ms)
    log.info("OpenTelemetry: store calls traced (sample %g, slow %s) to %s", sample,
             f"{slow_ms:g} ms" if slow_ms else "each row's p99", endpoint_text())  # fmt: skip


def requested() -> bool:
    """Whether this Locust process was started with ``--otel`` (the flag or ``LOCUST_ENABLE_OPENTELEMETRY``)."""
    flag = os.environ.get("LOCUST_ENABLE_OPENTELEMETRY", "").strip().lower() in ("1", "true", "yes", "on")
    return flag or "--otel" in sys.argv


def detect_resources_in_line() -> None:
    """Locust's ``--otel`` builds its resource (``Resource.create``) before loadgen's ``init``, and the SDK runs the
    resource detectors on a thread pool: real threads (``loadgen.runtime`` patches none) waiting on a queue gevent
    patched, which ends in ``LoopExit`` tracebacks at every start. The detectors (environment and process reads) run
    in the calling thread instead, with the same merge order and the same handling of a detector that fails."""
    from opentelemetry.sdk import resources

    def aggregated(detectors: Sequence[Any], initial_resource: Any = None, timeout: int = 5) -> Any:
        merged = initial_resource or resources.Resource.create()
        for detector in detectors:
            try:
                merged = merged.merge(detector.detect())
            except Exception as exc:
                if detector.raise_on_error:
                    raise
                log.warning("OpenTelemetry resource detector %s failed: %s", type(detector).__name__, exc)
        return merged

    resources.get_aggregated_resources = aggregated


def install_from(options: Any) -> None:
    """``install`` with the ``--otel-sample`` and ``--otel-slow-ms`` of Locust's parsed options (text from a form or
    an env var, or numbers). Values the settings refuse are left to them: that refusal is the run's one-line error."""
    from loadgen.config import values

    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":  # the standard way to say no traces
        return
    slow = getattr(options, "otel_slow_ms", None)
    try:
        sample = values.typed(str(getattr(options, "otel_sample", 0.01)), float, "otel_sample", None, 0.01)
        install(sample, values.typed("" if slow is None else str(slow), float, "otel_slow_ms"))
    except LoadgenError as exc:
        log.debug("--otel not installed: %s", exc)


def shutdown() -> None:
    """Export what is kept and stop (at the end of the run)."""
    if _On.keeper is not None:
        _On.keeper.shutdown()


def counts() -> dict[str, int]:
    """Store-call traces recorded and exported in this process so far."""
    return _On.keeper.counts() if _On.keeper is not None else {}


def endpoint_text() -> str:
    """Where spans go, without credentials (``OTEL_EXPORTER_OTLP_HEADERS`` is never shown)."""
    url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"
    )
    parts = urlsplit(url if "//" in url else "//" + url)
    scheme, port = parts.scheme + "://" if parts.scheme else "", f":{parts.port}" if parts.port else ""
    return f"{scheme}{parts.hostname}{port}"


def milvus_trace_config(url: str | None = None) -> dict[str, Any]:
    """milvus.yaml items that make a Milvus export its own spans to the same OTLP endpoint (gRPC), every call
    sampled the way its caller says (the embedded server; k8s/ shows the same for a cluster)."""
    url = (
        url
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
    )
    parts = urlsplit(url if "//" in url else "//" + url)
    if not parts.hostname:
        raise LoadgenError(f"OTEL_EXPORTER_OTLP_ENDPOINT {url!r}: give http://HOST:PORT")
    return {
        "trace.exporter": "otlp",
        "trace.sampleFraction": 1,
        "trace.otlp.endpoint": f"{parts.hostname}:{parts.port or 4317}",
        "trace.otlp.secure": parts.scheme == "https",
    }


# the first Milvus release line whose proxy continues a trace context it receives (its tracer sets the W3C
# propagator); older servers start a trace of their own for each call
JOINS_FROM = (2, 5, 0)


def server_line(version: str, engine: str = "") -> str:
    """One line on what Milvus's side of the traces will look like."""
    from loadgen.milvus.capabilities import parse_version, show

    if engine == "lite" or version.lower().replace("_", "-").startswith("milvus-lite"):
        return "loadgen: --otel: milvus-lite exports no spans of its own: the traces hold loadgen's client spans"
    server = parse_version(version)
    if server.level is not None and server.level[:2] < JOINS_FROM[:2]:
        return (
            f"loadgen: --otel: Milvus {version} starts a trace of its own for each call (a caller's trace is "
            f"continued from Milvus {show(JOINS_FROM)}): its spans, if it exports them, are not joined to loadgen's"
        )
    return f"loadgen: --otel: Milvus {version} continues loadgen's traces when it exports spans (trace.exporter)"


# ---- the spans ----------------------------------------------------------------------------------------------------
def traced_ops(layer: str, ops: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    """The operations of a store user, each call inside a client span (the table as it is while --otel is off)."""
    if _On.tracer is None:
        return dict(ops)
    return {name: _traced_op(layer, op, settings) for name, op in ops.items()}


def _traced_op(layer: str, op: Any, settings: Any) -> Any:
    attrs: dict[str, Any] = {
        "db.system": "milvus",
        STORE_ATTR: layer,
        "db.collection.name": settings.collection,
    }
    if op.search:
        attrs["loadgen.top_k"] = settings.top_k
    if op.queries is not None:  # --nq: query vectors per call (loadgen.clients.shape)
        attrs["loadgen.nq"] = settings.nq
    sync_attrs = {**attrs, "loadgen.operation": op.request_name(False)}
    async_attrs = {**attrs, STORE_ATTR: layer + "-async", "loadgen.operation": op.request_name(True)}
    call, acall = op.call, op.acall
    sync_name, async_name = f"{layer} {op.request_name(False)}", f"{layer}-async {op.request_name(True)}"

    def traced_call(store: Any, *inputs: Any) -> Any:
        with span(sync_name, sync_attrs):
            return call(store, *inputs)

    async def traced_acall(store: Any, *inputs: Any) -> Any:
        with span(async_name, async_attrs):
            return await (acall or call)(store, *inputs)

    return replace(op, call=traced_call, acall=traced_acall)


@contextmanager
def span(name: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A store call's (or a flow's) span around the block, current inside it; its outcome when the block ends."""
    if _On.tracer is None:
        yield None
        return
    with _On.tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            failed(current, exc)
            raise
        current.set_attribute("loadgen.outcome", "success")


def failed(current: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    current.set_attribute("loadgen.outcome", "failure")
    current.set_attribute("error.type", type(exc).__name__)
    current.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def timed_call(layer: str, method: str, fn: Callable[[], Any]) -> Any:
    """A timed handle's sync call (your own locustfile's ``self.milvus.search(...)``) inside a span."""
    with span(f"{layer} {method}", {"db.system": "milvus", STORE_ATTR: layer, "loadgen.operation": method}):
        return fn()


async def timed_acall(layer: str, method: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    with span(f"{layer} {method}", {"db.system": "milvus", STORE_ATTR: layer, "loadgen.operation": method}):
        return await fn()


def open_flow(name: str) -> tuple[Any, Any]:
    """A flow's parent span, made current (its store calls become its children); (span, token) or (None, None)."""
    if _On.tracer is None:
        return None, None
    from opentelemetry import context, trace

    current = _On.tracer.start_span(f"flow {name}", attributes={STORE_ATTR: "flow", "loadgen.operation": name})
    return current, context.attach(trace.set_span_in_context(current))


def flow_step(parent: Any, step: str, start: float, end: float, clock: tuple[float, int]) -> None:
    """One marked step of a flow as a child span, from its ``perf_counter`` readings (``clock``: a perf_counter
    reading and the epoch nanoseconds taken with it)."""
    from opentelemetry import trace

    def ns(t: float) -> int:
        return clock[1] + int((t - clock[0]) * 1e9)

    ctx = trace.set_span_in_context(parent)
    child = _On.tracer.start_span(f"step {step}", context=ctx, start_time=ns(start), attributes={"loadgen.step": step})
    child.end(end_time=ns(end))


def close_flow(current: Any, token: Any, exc: BaseException | None) -> None:
    from opentelemetry import context

    if current is None:
        return
    if exc is not None and not isinstance(exc, GeneratorExit):
        failed(current, exc)
    else:
        current.set_attribute("loadgen.outcome", "success")
    current.end()
    try:
        context.detach(token)
    except Exception:  # a flow ended in another context than it began (a cancelled task): the span is still ended
        log.debug("flow span: context not detached", exc_info=True)
