"""The OpenTelemetry SDK side of ``loadgen.stats.tracing`` (imported only under ``--otel``): loadgen's tracer
provider with its sampler (``StoreSampler``: the head decision) and its processor (``TailKeep``: each trace kept
or dropped when its store call ends), the OTLP exporter, gRPC's client instrumentation."""

from __future__ import annotations

import bisect
import os
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, Tracer, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from loadgen.errors import LoadgenError
from loadgen.stats.tracing import STORE_ATTR

WINDOW = 1000  # a row's running p99 is taken over its last this many calls ...
MIN_CALLS = 100  # ... once it has made this many
MAX_OPEN_TRACES = 10_000  # traces whose root has not ended yet (a stopped process leaves some): the oldest dropped


def provide(
    service: str, sample: float, slow_ms: float | None, exporter: SpanExporter | None = None
) -> tuple[Tracer, TailKeep]:
    """The store calls' tracer (on a provider of loadgen's own, not the global one Locust's --otel sets) and its
    processor. With the OTLP exporter (``exporter`` None), gRPC's client calls are instrumented too, their spans
    children of the store call they belong to; a given exporter (a test's) leaves gRPC alone."""
    keeper = TailKeep(exporter or _exporter(), slow_ms)
    # not Resource.create: its detectors run on a thread pool with a 5 s timeout, which a gevent-patched process
    # (Locust's) may not serve before it runs out
    resource = OTELResourceDetector().detect().merge(Resource({"service.name": service}))
    provider = TracerProvider(resource=resource, sampler=StoreSampler(sample))
    provider.add_span_processor(keeper)
    if exporter is None:
        _intercept_sync_channels(provider)
        GrpcAioInstrumentorClient().instrument(tracer_provider=provider)
    return provider.get_tracer("loadgen"), keeper


def _intercept_sync_channels(provider: TracerProvider) -> None:
    """gRPC's sync channels made from now on carry OpenTelemetry's client interceptor on ``provider``. Not
    ``GrpcInstrumentorClient``: it hands its interceptor the provider of the channel call's kwargs (none), so its
    spans go to the global provider (Locust's own under --otel), not to ours."""
    made = {"insecure_channel": grpc.insecure_channel, "secure_channel": grpc.secure_channel}

    def wrap(name: str) -> Callable[..., grpc.Channel]:
        def channel(*args: Any, **kwargs: Any) -> grpc.Channel:
            return intercept_channel(made[name](*args, **kwargs), client_interceptor(tracer_provider=provider))

        return channel

    grpc.insecure_channel = wrap("insecure_channel")
    grpc.secure_channel = wrap("secure_channel")


def _exporter() -> SpanExporter:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = (protocol or "grpc").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol not in ("http/protobuf", "http"):
        raise LoadgenError(f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}: use grpc or http/protobuf")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    except ImportError:
        raise LoadgenError(
            "--otel over http: pip install opentelemetry-exporter-otlp-proto-http (grpc is installed)"
        ) from None
    return HttpExporter()


# ---- sampling -----------------------------------------------------------------------------------------------------
class StoreSampler(Sampler):
    """Head decision: a store call (or flow) with no parent of ours is recorded always and *sampled* (exported for
    sure, and flagged so to Milvus) with probability ``fraction``; a span inside one follows its parent (recorded,
    sampled as the parent is); any other span (the setup's gRPC calls) is not recorded."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self._rng = random.Random()

    def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            sampled = parent.trace_flags.sampled
            return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.RECORD_ONLY, attributes)
        if not attributes or STORE_ATTR not in attributes:
            return SamplingResult(Decision.DROP)
        drawn = self.fraction >= 1.0 or self._rng.random() < self.fraction
        return SamplingResult(Decision.RECORD_AND_SAMPLE if drawn else Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return f"loadgen.StoreSampler({self.fraction:g})"


class TailKeep(SpanProcessor):
    """A span processor that holds each trace's spans until its root (the store call) ends, then exports them all
    or none: kept when drawn, failed, or slow for its row."""

    def __init__(self, exporter: SpanExporter, slow_ms: float | None) -> None:
        self.batch = BatchSpanProcessor(exporter)
        self.slow_ms = slow_ms
        self._open: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._windows: dict[str, tuple[deque[float], list[float]]] = {}
        self._lock = threading.Lock()
        self.recorded = self.exported = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        parent = span.parent
        if parent is not None and not parent.is_remote:  # inside a store call: wait for its root
            with self._lock:
                self._open.setdefault(trace_id, []).append(span)
                if len(self._open) > MAX_OPEN_TRACES:
                    self._open.popitem(last=False)
            return
        with self._lock:
            children = self._open.pop(trace_id, [])
            self.recorded += 1
            keep = self._keep(span)
            if keep:
                self.exported += 1
        if keep:
            for each in (*children, span):
                self._emit(each)

    def _keep(self, span: ReadableSpan) -> bool:
        ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        slow = self._slow(span.name, ms)
        return span.context.trace_flags.sampled or span.status.status_code is StatusCode.ERROR or slow

    def _slow(self, row: str, ms: float) -> bool:
        if self.slow_ms is not None:
            return ms >= self.slow_ms
        recent, ordered = self._windows.setdefault(row, (deque(), []))
        slow = len(ordered) >= MIN_CALLS and ms > ordered[int(len(ordered) * 0.99)]
        recent.append(ms)
        bisect.insort(ordered, ms)
        if len(recent) > WINDOW:
            del ordered[bisect.bisect_left(ordered, recent.popleft())]
        return slow

    def _emit(self, span: ReadableSpan) -> None:
        # the SDK's batch processor exports sampled spans only; a kept unsampled one (a failure, a slow call) is
        # handed to its queue directly
        inner = getattr(self.batch, "_batch_processor", None)
        if inner is not None:
            inner.emit(span)
        elif span.context.trace_flags.sampled:  # pragma: no cover - another SDK layout
            self.batch.on_end(span)

    def counts(self) -> dict[str, int]:
        return {"recorded": self.recorded, "exported": self.exported}

    def shutdown(self) -> None:
        self.batch.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.batch.force_flush(timeout_millis))
