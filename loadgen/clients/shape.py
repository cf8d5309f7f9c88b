"""The shape of a search request and of its answer: ``--nq`` query vectors per call and the ``--output-fields``
profile (what each hit carries), and the one way the answer's size is measured.

Response bytes: the serialized size of the server's ``SearchResults`` message as received (protobuf ``ByteSize()``:
the gRPC message payload, without gRPC's 5-byte frame prefix, HTTP/2 framing or headers). The fast path reads it off
the response it parses itself; the pymilvus layers' clients turn the response into hits before they hand it back, so
their stub's ``Search`` method is wrapped (``capture``) to keep the response in a context variable that the timed call
reads as soon as the library returns (same greenlet, thread or asyncio task). The size is computed afterwards, off
the timed span. Only the layers whose library lets a caller choose ``nq`` and output fields here: raw pymilvus
(``MilvusClient``, ``AsyncMilvusClient``) and the fast path. langchain-milvus and llama-index search one query per
call and choose their documents' fields themselves: a test that asks them for another shape is refused at start.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Sequence
from typing import Any

from pymilvus import DataType

from loadgen.errors import LoadgenError

DEFAULT_PROFILE = "ids"
_last: contextvars.ContextVar[Any] = contextvars.ContextVar("loadgen_search_response", default=None)
_VECTOR_TYPES = frozenset(
    getattr(DataType, n) for n in ("FLOAT_VECTOR", "BINARY_VECTOR", "FLOAT16_VECTOR", "BFLOAT16_VECTOR",
                                   "SPARSE_FLOAT_VECTOR", "INT8_VECTOR") if hasattr(DataType, n)
)  # fmt: skip


def asks_shape(settings: Any) -> bool:
    """Whether the settings ask for another request shape than one query vector and ids only."""
    return settings.nq > 1 or settings.output_fields != DEFAULT_PROFILE


def check_layer(name: str, layer: str, supported: bool, settings: Any) -> None:
    """One user class's layer serves the asked shape, else one line saying what its library does."""
    if supported or not asks_shape(settings):
        return
    what = f"--nq {settings.nq}" if settings.nq > 1 else f"--output-fields {settings.output_fields}"
    raise LoadgenError(
        f"{name}: {what}: the {layer} layer searches one query per call and returns the fields its library "
        "chooses; --nq and --output-fields apply to the pymilvus layers and the fast path (PymilvusUser, "
        "AsyncPymilvusUser, FastPymilvusUser, AsyncFastPymilvusUser)"
    )


def output_fields(profile: str, schema: dict[str, Any]) -> list[str]:
    """The fields a search asks for under ``profile``, from the collection's schema (``describe_collection``):
    ids: none (each hit's id and distance only); scalar: every scalar field but the primary key; vectors: the
    vector fields; all: both."""
    if profile == DEFAULT_PROFILE:
        return []
    fields = [f for f in schema.get("fields", []) if not f.get("is_primary")]
    vectors = [f["name"] for f in fields if f.get("type") in _VECTOR_TYPES]
    scalars = [f["name"] for f in fields if f.get("type") not in _VECTOR_TYPES]
    return {"scalar": scalars, "vectors": vectors, "all": scalars + vectors}[profile]


def response_bytes(response: Any) -> int | None:
    """The measured size of one search answer (see the module's text), None when nothing was captured."""
    size = getattr(response, "ByteSize", None)
    return int(size()) if callable(size) else None


def forget() -> None:
    """Before a call: no answer of an earlier call in this context may be taken for this one's."""
    _last.set(None)


def taken() -> Any:
    """The Search response the wrapped stub received last in this context (None if none since ``forget``)."""
    return _last.get()


def capture(stub: Any) -> None:
    """Wrap ``stub.Search`` (a pymilvus client's gRPC stub, sync or grpc.aio) so each response is kept in this
    context (``taken``) on its way back to the library. Idempotent. Sync or async is told by what the call returns
    (a grpc.aio call is awaitable), whatever wraps the channel (tracing interceptors)."""
    search = stub.Search
    if getattr(search, "_loadgen_capture", False):
        return

    def kept(*args: Any, **kwargs: Any) -> Any:
        response = search(*args, **kwargs)
        if inspect.isawaitable(response):
            return _kept(response)  # awaited by the library in its own task: the context is the caller's
        _last.set(response)
        return response

    functools.update_wrapper(kept, search, assigned=(), updated=())
    kept._loadgen_capture = True  # type: ignore[attr-defined]
    stub.Search = kept


async def _kept(call: Any) -> Any:
    response = await call
    _last.set(response)
    return response


def capture_client(client: Any, use_async: bool) -> None:
    """``capture`` on a pymilvus ``MilvusClient`` / ``AsyncMilvusClient``'s stub (a client without one, a test's
    stand-in, is left as it is: its answers are then not measured)."""
    get = getattr(client, "_get_connection", None)
    stub = getattr(get(), "_async_stub" if use_async else "_stub", None) if get is not None else None
    if stub is not None:
        capture(stub)


def scores(
    recall: Any, query_indexes: Sequence[int | None], hit_ids: Sequence[Sequence[int]]
) -> float | list[float] | None:
    """Recall per query vector: ``recall(query_index, ids)`` for each vector a dataset query (its own truth);
    None when none of them is. One query vector's is a bare float, as a search's recall has always been."""
    return one_or_list([recall(j, list(ids)) for j, ids in zip(query_indexes, hit_ids, strict=False) if j is not None])


def one_or_list(values: list[float]) -> float | list[float] | None:
    """What a request's ``context["recall"]`` holds: nothing scored: None; one query vector: its recall; several:
    one per query vector (``loadgen.stats.recall`` counts each)."""
    return None if not values else values[0] if len(values) == 1 else values
