"""Collection lifecycle of the pymilvus layer: validate, create, index, fill, wait for the index and load, once per
test run; what loadgen may create, write, reuse and drop is decided in ``loadgen.milvus.ownership``.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from pymilvus import DataType, MilvusClient, MilvusException

from loadgen.config.settings import INDEX_DEFAULTS, Settings
from loadgen.config.values import redact_uri
from loadgen.errors import CallTimeout, LoadgenError
from loadgen.milvus import held_rows, ownership, preparation, readiness
from loadgen.milvus.ownership import MARKER, OWNER_PROPERTY, is_owned
from loadgen.workload import truth
from loadgen.workload.rows import RowFactory, dataset_rows

__all__ = ["MARKER", "OWNER_PROPERTY", "is_owned"]  # re-exported: callers name them through this module
log = logging.getLogger("loadgen")
FILL_BATCH = 1000
# allowed build params per index: name -> (min, max); missing params take the default
INDEX_PARAMS: dict[str, dict[str, tuple[int, int]]] = {
    "AUTOINDEX": {},
    "FLAT": {},
    "HNSW": {"M": (2, 2048), "efConstruction": (1, 1 << 20)},
    "IVF_FLAT": {"nlist": (1, 65536)},
}
SEARCH_PARAMS: dict[str, dict[str, tuple[int, int]]] = {
    "AUTOINDEX": {"level": (1, 5)},
    "FLAT": {},
    "HNSW": {"ef": (1, 32768)},
    "IVF_FLAT": {"nprobe": (1, 65536)},
}
WRITTEN_FIELDS = ("id", "vector", "text", "category", "price")
LAYOUT = ownership.Layout("vector", WRITTEN_FIELDS[1:], "loadgen")


def _check_params(kind: str, params: dict[str, Any], allowed: dict[str, tuple[int, int]], index: str) -> None:
    for key, value in params.items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise LoadgenError(f"invalid {kind} params for {index}: unknown key {key!r} (allowed: {known})")
        low, high = allowed[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise LoadgenError(
                f"invalid {kind} params for {index}: {key}={value!r} must be an integer in [{low}, {high}]"
            )


def index_params(settings: Settings) -> dict[str, Any]:
    params = {**INDEX_DEFAULTS.get(settings.index_type, {}), **settings.index_params}
    _check_params("index", settings.index_params, INDEX_PARAMS[settings.index_type], settings.index_type)
    return params


def search_params(settings: Settings) -> dict[str, Any]:
    _check_params("search", settings.search_params, SEARCH_PARAMS[settings.index_type], settings.index_type)
    defaults: dict[str, Any] = {"HNSW": {"ef": max(64, settings.top_k)}, "IVF_FLAT": {"nprobe": 16}}
    return {**defaults.get(settings.index_type, {}), **settings.search_params}


def server_message(exc: BaseException) -> str:
    """The server's (or grpc's) own words: a wrong token comes back as a bare grpc error, not a MilvusException."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") and hasattr(exc, "details"):
        return f"{exc.code().name}: {exc.details()}"
    return str(getattr(exc, "message", None) or exc)


@contextmanager
def setup_client(settings: Settings, what: str, name: str) -> Iterator[MilvusClient]:
    """A client for one layer's collection setup, closed after it, and the setup's one-line errors: the server's
    refusal in its own words, or a call that did not end within its deadline (``runtime.bounded``)."""
    client = connect(settings)
    try:
        yield client
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"Milvus refused the {what} setup of {name!r}: {server_message(exc)}") from None
    except CallTimeout as exc:
        raise LoadgenError(f"the {what} setup of {name!r} timed out: {exc}") from None
    finally:
        client.close()


def connect(settings: Settings) -> MilvusClient:
    try:
        # an alias of its own: closing a client with the default alias would close every client of that URI
        alias = f"loadgen-setup-{uuid.uuid4().hex}"
        return MilvusClient(**settings.client_kwargs(alias))
    except grpc.RpcError as exc:  # the handshake reached the server and it said no (e.g. a wrong token)
        where = redact_uri(settings.uri)
        raise LoadgenError(f"Milvus at {where} refused the connection: {server_message(exc)}") from None
    except MilvusException as exc:
        hint = " (TLS: check --tls-ca-file and --tls-server-name)" if settings.uri.startswith("https://") else ""
        raise LoadgenError(
            f"cannot reach Milvus at {redact_uri(settings.uri)} within {settings.timeout:g} s: {exc.message}{hint}"
        ) from None


@dataclass(frozen=True)
class Prepared:
    name: str
    owned: bool  # loadgen's (filled by loadgen), else a user's allowed with --allow-foreign-collection
    created: bool  # created by this call (a later swarm or sweep level of the same run reuses it)
    rows: int
    server_version: str
    truth_rows: int = 0  # --dataset rows the collection holds, when not what --rows selects (see held_rows)


def _schema(settings: Settings) -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=MARKER)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=settings.dim)
    schema.add_field("text", DataType.VARCHAR, max_length=512)
    schema.add_field("category", DataType.INT64)
    schema.add_field("price", DataType.FLOAT)
    return schema


def count_rows(client: MilvusClient, settings: Settings) -> int:
    res = client.query(
        settings.collection, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=settings.timeout
    )
    return int(res[0]["count(*)"]) if res else 0


PARSE_ERROR = 65535  # Milvus's code for "cannot parse expression"


def check_filter(client: MilvusClient, settings: Settings) -> None:
    """Let the server parse ``--filter`` before any load starts. Milvus parses a query's expression before it looks
    at whether the collection is loaded, so a query on an unloaded collection is a read-only syntax check. Without the
    collection yet, a scratch one (loadgen's schema plus dynamic fields, no index, never loaded) is made and dropped."""
    if not settings.filter:
        return
    name, scratch = settings.collection, False
    if not client.has_collection(name, timeout=settings.timeout):
        name, scratch = f"loadgen_filtercheck_{uuid.uuid4().hex[:12]}", True
        schema = _schema(settings)
        schema.enable_dynamic_field = True  # fields of the other layers' schemas parse too
        client.create_collection(name, schema=schema, timeout=settings.timeout)
    try:
        client.query(name, filter=settings.filter, limit=1, timeout=settings.timeout)
    except MilvusException as exc:
        if exc.code == PARSE_ERROR or "cannot parse expression" in str(exc.message):
            raise LoadgenError(f"--filter {settings.filter!r} rejected by Milvus: {exc.message}") from None
        # anything else (collection not loaded, ...) comes after the parse: the expression is fine
    finally:
        if scratch:
            client.drop_collection(name, timeout=settings.timeout)


def held_dataset_rows(
    client: MilvusClient, settings: Settings, c: ownership.Claim, keys: held_rows.Keys = held_rows.PYMILVUS
) -> int:
    """--dataset: the dataset rows an existing collection of any layer holds (refuses rows that are not the
    dataset's, and a user's collection that holds none: nothing to score against)."""
    if not settings.dataset or c.create:
        return 0
    held = held_rows.dataset_rows_held(client, settings, c.name, keys)
    if not held and not c.owned:  # a user's collection is never filled: nothing to score against
        raise LoadgenError(
            f"collection {c.name!r} holds none of the rows of --dataset {settings.dataset} (ids 0..n-1), so its "
            "recall cannot be scored; drop --dataset or choose another --collection"
        )
    return held


def dataset_fill_plan(
    client: MilvusClient, settings: Settings, c: ownership.Claim, keys: held_rows.Keys
) -> tuple[int, int, int]:
    """--dataset in a framework layer's collection: (dataset rows it holds, rows it must hold after the fill,
    truth_rows). A reused collection that holds rows but none of the dataset's (a run without --dataset filled it)
    is refused: the fill would add dataset rows beside rows with the same keys, and their hits would score."""
    held = held_dataset_rows(client, settings, c, keys)
    if not held and not c.create and count_rows(client, dataclasses.replace(settings, collection=c.name)):
        raise LoadgenError(
            f"collection {c.name!r} holds rows that are not --dataset {settings.dataset}'s, so its recall cannot be "
            "scored; pass --recreate (a collection of loadgen's) or another --collection"
        )
    truth_rows = held_rows.truth_rows_for(settings, held, will_fill=c.owned)
    target = truth_rows or truth.workload_for(settings).dataset.count
    return held, (target if c.owned else held), truth_rows


def check(settings: Settings) -> str:
    """Everything ``prepare`` would refuse, found without writing anything. Returns the server version."""
    index_params(settings)
    search_params(settings)
    _workload(settings)
    client = connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        held_dataset_rows(client, settings, ownership.claim(client, settings, settings.collection, LAYOUT))
        check_filter(client, settings)
        return version
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"Milvus refused the collection check: {server_message(exc)}") from None
    finally:
        client.close()


def check_claim(settings: Settings, name: str, layout: ownership.Layout, what: str) -> None:
    """A framework layer's collection ``name``: what its ``prepare`` would refuse before writing (the index and
    search params, the dataset, the ownership order and the schema), read-only."""
    index_params(settings)
    search_params(settings)
    _workload(settings)
    with setup_client(settings, what, name) as client:
        ownership.claim(client, settings, name, layout)


def prepare(settings: Settings, *, progress: bool = True) -> Prepared:
    """Make the collection ready for a run. Raises LoadgenError (one line) and touches nothing on bad input."""
    idx_params = index_params(settings)
    search_params(settings)  # validate before anything is created
    workload = _workload(settings)  # a bad dataset (missing, corrupt, other dim) touches nothing either
    name = settings.collection
    with setup_client(settings, "collection", name) as client:
        version = str(client.get_server_version(timeout=settings.timeout))
        c = ownership.claim(client, settings, name, LAYOUT)
        held = held_dataset_rows(
            client, settings, c
        )  # rows that are not the dataset's are refused here, before any write
        check_filter(client, settings)  # before anything is created or filled
        if c.create:
            ownership.clear_for_create(client, settings, c)
            preparation.step(name, "creating")
            _create(client, settings, idx_params)
            ownership.stamp(client, settings, name)
        else:  # its rows are counted by a query, which needs it loaded; one created here is empty, and is loaded
            preparation.step(name, "loading")  # once, after its rows are in and indexed (a load takes seconds)
            client.load_collection(name, timeout=max(settings.timeout, 60))
        truth_rows = 0
        if workload is not None:
            truth_rows = held_rows.truth_rows_for(settings, held, will_fill=c.owned)
            target = truth_rows or workload.dataset.count
            if c.owned and held < target:
                _fill_dataset(client, settings, workload, start=held, progress=progress)
        elif c.owned and (start := 0 if c.create else count_rows(client, settings)) < settings.rows:
            _fill(client, settings, start=start, progress=progress)
        ready = readiness.wait_until_indexed(client, settings, name, "vector", owned=c.owned)
        if c.create and not ready["reloaded"]:  # nothing flushed to load indexed (no rows): load it as it is
            preparation.step(name, "loading")
            client.load_collection(name, timeout=max(settings.timeout, 60))
        rows = count_rows(client, settings)
        return Prepared(name, c.owned, c.create, rows, version, truth_rows)


def create_empty(settings: Settings) -> str:
    """A collection that must start empty (a runbook's): created by this run, indexed and loaded; an earlier one of
    loadgen's only with ``--recreate``, a user's never. Returns the server version."""
    idx_params = index_params(settings)
    search_params(settings)
    name = settings.collection
    with setup_client(settings, "collection", name) as client:
        version = str(client.get_server_version(timeout=settings.timeout))
        c = ownership.claim(client, settings, name, LAYOUT)
        if not c.create:
            raise LoadgenError(
                f"collection {name!r} exists and a runbook starts from an empty collection: choose another "
                "--collection" + (", or pass --recreate" if c.owned else "")
            )
        ownership.clear_for_create(client, settings, c)
        _create(client, settings, idx_params)
        ownership.stamp(client, settings, name)
        client.load_collection(name, timeout=max(settings.timeout, 60))
        return version


def _create(client: MilvusClient, settings: Settings, params: dict[str, Any]) -> None:
    index = client.prepare_index_params()
    index.add_index(
        field_name="vector", index_type=settings.index_type, metric_type=settings.metric_type, params=params
    )
    client.create_collection(
        settings.collection,
        schema=_schema(settings),
        consistency_level=settings.consistency_level,
        timeout=settings.timeout,
    )
    try:
        client.create_index(settings.collection, index, timeout=max(settings.timeout, 60))
    except MilvusException as exc:
        client.drop_collection(settings.collection, timeout=settings.timeout)  # ours, created a moment ago
        raise LoadgenError(f"Milvus rejected the {settings.index_type} index params {params}: {exc.message}") from None


def _fill(client: MilvusClient, settings: Settings, *, start: int, progress: bool) -> None:
    factory = RowFactory(settings.dim, settings.metric_type, settings.seed)
    with preparation.bar(settings.collection, settings.rows - start, enabled=progress) as bar:
        for first in range(start, settings.rows, FILL_BATCH):
            ids = list(range(first, min(first + FILL_BATCH, settings.rows)))
            client.insert(settings.collection, factory.rows(ids), timeout=max(settings.timeout, 60))
            bar.update(len(ids))
    # not flushed here: readiness.wait_until_indexed flushes a collection of loadgen's (the only kind it fills)


def _workload(settings: Settings) -> truth.Workload | None:
    """With ``--dataset``: open and check it, and compute (or load) its ground truth, before any write."""
    if not settings.dataset:
        return None
    preparation.step(settings.collection, "reading the dataset and its ground truth for")
    return truth.workload_for(settings)


def _fill_dataset(
    client: MilvusClient, settings: Settings, workload: truth.Workload, *, start: int, progress: bool
) -> None:
    """Insert the dataset's base vectors start..count-1 as ids start..count-1 (a reused collection's rows were
    checked to be the same dataset's first rows: ``held_rows``)."""
    with preparation.bar(settings.collection, workload.dataset.count - start, enabled=progress) as bar:
        for first, vectors in workload.base_from(start, FILL_BATCH):
            rows = dataset_rows(first, vectors, settings.seed)
            client.insert(settings.collection, rows, timeout=max(settings.timeout, 60))
            bar.update(len(rows))


def release(settings: Settings, name: str) -> ownership.Released:
    """The end of a run for the collection ``name`` of any layer: dropped if this run created it (or with
    --drop-reused), else kept (see ``ownership.decide_release``); logs which, and why."""
    client = connect(settings)
    try:
        out = ownership.release(client, settings, name)
        # the user's own collections go unmentioned; every drop, and every kept collection of loadgen's, is said
        (log.debug if out.message.endswith("not created by loadgen") else log.info)("%s", out.message)
        return out
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"could not drop {name!r}: {server_message(exc)}") from None
    finally:
        client.close()


def drop_if_owned(settings: Settings) -> bool:
    """Drop the pymilvus layer's collection if this run created it. Returns True if dropped."""
    return release(settings, settings.collection).dropped
