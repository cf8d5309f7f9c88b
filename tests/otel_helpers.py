"""What the --otel tests run on loopback: an OTLP/gRPC trace receiver (the ``opentelemetry-proto`` service) and a
recording gRPC proxy in front of Milvus that notes the W3C ``traceparent`` each call carried."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Every span exported to it, as a dict: service, name, trace, span, parent (hex), attrs, status code, kind."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        got = []
        for rs in request.resource_spans:
            service = next((_value(a.value) for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    got.append({
                        "service": service, "name": sp.name, "trace": sp.trace_id.hex(), "span": sp.span_id.hex(),
                        "parent": sp.parent_span_id.hex(), "attrs": {a.key: _value(a.value) for a in sp.attributes},
                        "status": sp.status.code, "kind": sp.kind, "flags": sp.flags,
                    })  # fmt: skip
        with self.lock:
            self.spans.extend(got)
        return trace_service_pb2.ExportTraceServiceResponse()

    def of(self, service: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["service"] == service]


@contextmanager
def receiver() -> Iterator[tuple[Receiver, int]]:
    """An OTLP/gRPC trace receiver on a free loopback port: (receiver, port)."""
    recv = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(recv, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield recv, port
    finally:
        server.stop(grace=None)


class Recorder(grpc.GenericRpcHandler):
    """Forwards every unary call to ``target`` as bytes, with its metadata; notes (method, traceparent) of each."""

    def __init__(self, target: str) -> None:
        opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.channel = grpc.insecure_channel(target, options=opts)
        self.seen: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def service(self, details: Any) -> Any:
        method = details.method
        forward = self.channel.unary_unary(method)  # no (de)serializers: the bytes as they came

        def handle(request: bytes, context: Any) -> bytes:
            metadata = [(k, v) for k, v in context.invocation_metadata()
                        if not k.startswith(":") and not k.startswith("grpc-") and k != "user-agent"]  # fmt: skip
            with self.lock:
                self.seen.append((method, dict(metadata).get("traceparent")))
            remaining = context.time_remaining()  # a call without a deadline: about 9.2e18 s, which grpc refuses
            try:
                return forward(request, metadata=metadata, timeout=remaining if remaining < 3600 else None)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details() or "")
                raise

        return grpc.unary_unary_rpc_method_handler(handle)


@contextmanager
def recording_proxy(target: str) -> Iterator[tuple[Recorder, int]]:
    """A gRPC proxy on a free loopback port in front of ``target`` (host:port): (recorder, port)."""
    recorder = Recorder(target)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=[recorder])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield recorder, port
    finally:
        server.stop(grace=None)
        recorder.channel.close()
