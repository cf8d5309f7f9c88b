"""Collection lifecycle: validate, create, index, load and fill once per test run; drop only what loadgen owns.

Collections loadgen creates carry ``MARKER`` in their description. Anything without it is a user's collection:
never dropped, and written only with ``--allow-foreign-collection``.
"""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from pymilvus import DataType, MilvusClient, MilvusException

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.workload import truth
from loadgen.workload.rows import RowFactory, dataset_rows

MARKER = "[created-by:milvus-loadgen]"
FILL_BATCH = 1000
# allowed build params per index: name -> (min, max); missing params take the default
INDEX_PARAMS: dict[str, dict[str, tuple[int, int]]] = {
    "AUTOINDEX": {},
    "FLAT": {},
    "HNSW": {"M": (2, 2048), "efConstruction": (1, 1 << 20)},
    "IVF_FLAT": {"nlist": (1, 65536)},
}
INDEX_DEFAULTS: dict[str, dict[str, int]] = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 128}}
SEARCH_PARAMS: dict[str, dict[str, tuple[int, int]]] = {
    "AUTOINDEX": {"level": (1, 5)},
    "FLAT": {},
    "HNSW": {"ef": (1, 32768)},
    "IVF_FLAT": {"nprobe": (1, 65536)},
}
WRITTEN_FIELDS = ("id", "vector", "text", "category", "price")


OWNER_PROPERTY = ("loadgen.created_by", "milvus-loadgen")  # for collections a library creates with its own schema


def is_owned(desc: dict[str, Any]) -> bool:
    """Did loadgen create the collection ``desc`` (a MilvusClient.describe_collection result) describes?"""
    props = desc.get("properties") or {}
    return MARKER in (desc.get("description") or "") or props.get(OWNER_PROPERTY[0]) == OWNER_PROPERTY[1]


def redact_uri(uri: str) -> str:
    """``http://user:secret@host`` -> ``http://***@host``: credentials never reach a message."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


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
    owned: bool
    created: bool
    rows: int
    server_version: str


def _schema(settings: Settings) -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=MARKER)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=settings.dim)
    schema.add_field("text", DataType.VARCHAR, max_length=512)
    schema.add_field("category", DataType.INT64)
    schema.add_field("price", DataType.FLOAT)
    return schema


def _check_existing(client: MilvusClient, settings: Settings) -> bool:
    """Validate an existing collection against the settings; returns whether loadgen owns it."""
    desc = client.describe_collection(settings.collection, timeout=settings.timeout)
    owned = is_owned(desc)
    name = settings.collection
    if not owned and not settings.allow_foreign_collection:
        raise LoadgenError(
            f"collection {name!r} exists and was not created by loadgen; choose another --collection, "
            "or pass --allow-foreign-collection to write into it"
        )
    fields = {f["name"]: f for f in desc.get("fields", [])}
    vector = fields.get("vector")
    if vector is None:
        raise LoadgenError(
            f"collection {name!r} has no field named 'vector'; loadgen writes id, vector, text, category, price"
        )
    dim = int(vector.get("params", {}).get("dim", 0))
    if dim != settings.dim:
        hint = "pass --recreate to rebuild it" if owned else "choose --dim to match or another --collection"
        raise LoadgenError(f"dimension mismatch: collection {name!r} has dim {dim}, --dim is {settings.dim}; {hint}")
    missing = [f for f in WRITTEN_FIELDS if f not in fields and not desc.get("enable_dynamic_field")]
    if missing:
        raise LoadgenError(f"collection {name!r} lacks fields loadgen writes: {', '.join(missing)}")
    return owned


def count_rows(client: MilvusClient, settings: Settings) -> int:
    res = client.query(
        settings.collection, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=settings.timeout
    )
    return int(res[0]["count(*)"]) if res else 0


def exists(client: MilvusClient, settings: Settings, name: str) -> bool:
    """Whether ``name`` exists; with ``--require-existing`` a missing collection is an error (nothing is created)."""
    if client.has_collection(name, timeout=settings.timeout):
        return True
    if settings.require_existing:
        raise LoadgenError(f"collection {name!r} does not exist and --require-existing forbids creating it")
    return False


def _inspect(client: MilvusClient, settings: Settings) -> bool | None:
    """None if the collection does not exist (or will be recreated), else whether loadgen owns it. No writes."""
    if not exists(client, settings, settings.collection):
        return None
    if settings.recreate:
        desc = client.describe_collection(settings.collection, timeout=settings.timeout)
        if not is_owned(desc):
            raise LoadgenError(f"--recreate refused: collection {settings.collection!r} was not created by loadgen")
        return None
    return _check_existing(client, settings)


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


def check(settings: Settings) -> str:
    """Everything ``prepare`` would refuse, found without writing anything. Returns the server version."""
    index_params(settings)
    search_params(settings)
    _workload(settings)
    client = connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        _inspect(client, settings)
        check_filter(client, settings)
        return version
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"Milvus refused the collection check: {server_message(exc)}") from None
    finally:
        client.close()


def prepare(settings: Settings, *, progress: bool = True) -> Prepared:
    """Make the collection ready for a run. Raises LoadgenError (one line) and touches nothing on bad input."""
    idx_params = index_params(settings)
    search_params(settings)  # validate before anything is created
    workload = _workload(settings)  # a bad dataset (missing, corrupt, other dim) touches nothing either
    target = workload.dataset.count if workload is not None else settings.rows
    client = connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
        owned = _inspect(client, settings)
        check_filter(client, settings)  # before anything is created or filled
        created = owned is None
        if created:
            if client.has_collection(settings.collection, timeout=settings.timeout):  # --recreate of our own
                client.drop_collection(settings.collection, timeout=settings.timeout)
            _create(client, settings, idx_params)
            owned = True
        client.load_collection(settings.collection, timeout=max(settings.timeout, 60))
        rows = count_rows(client, settings)
        if owned and rows < target and workload is not None:
            _fill_dataset(client, settings, workload, start=rows, progress=progress)
            rows = count_rows(client, settings)
        elif owned and rows < settings.rows:
            _fill(client, settings, start=rows, progress=progress)
            rows = count_rows(client, settings)
        return Prepared(settings.collection, bool(owned), created, rows, version)
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"Milvus refused the collection setup: {server_message(exc)}") from None
    finally:
        client.close()


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
    from tqdm import tqdm

    factory = RowFactory(settings.dim, settings.metric_type, settings.seed)
    total = settings.rows - start
    with tqdm(
        total=total, desc=f"filling {settings.collection}", unit="rows", disable=not progress, file=sys.stderr
    ) as bar:
        for first in range(start, settings.rows, FILL_BATCH):
            ids = list(range(first, min(first + FILL_BATCH, settings.rows)))
            client.insert(settings.collection, factory.rows(ids), timeout=max(settings.timeout, 60))
            bar.update(len(ids))
    client.flush(settings.collection, timeout=max(settings.timeout, 120))


def _workload(settings: Settings) -> truth.Workload | None:
    """With ``--dataset``: open and check it, and compute (or load) its ground truth, before any write."""
    return truth.workload_for(settings) if settings.dataset else None


def _fill_dataset(
    client: MilvusClient, settings: Settings, workload: truth.Workload, *, start: int, progress: bool
) -> None:
    """Insert the dataset's base vectors start..count-1 as ids start..count-1 (a reused collection's rows are
    taken to be the same dataset's first rows: pass --recreate after changing --dataset)."""
    from tqdm import tqdm

    total = workload.dataset.count - start
    with tqdm(
        total=total, desc=f"filling {settings.collection}", unit="rows", disable=not progress, file=sys.stderr
    ) as bar:
        for first, vectors in workload.dataset.iter_base(FILL_BATCH):
            if first + len(vectors) <= start:
                continue
            skip = max(start - first, 0)
            rows = dataset_rows(first + skip, vectors[skip:], settings.seed)
            client.insert(settings.collection, rows, timeout=max(settings.timeout, 60))
            bar.update(len(rows))
    client.flush(settings.collection, timeout=max(settings.timeout, 120))


def drop_if_owned(settings: Settings) -> bool:
    """Drop the collection only if loadgen created it. Returns True if dropped."""
    client = connect(settings)
    try:
        if not client.has_collection(settings.collection, timeout=settings.timeout):
            return False
        desc = client.describe_collection(settings.collection, timeout=settings.timeout)
        if not is_owned(desc):
            return False
        client.drop_collection(settings.collection, timeout=settings.timeout)
        return True
    except (MilvusException, grpc.RpcError) as exc:
        raise LoadgenError(f"could not drop {settings.collection!r}: {server_message(exc)}") from None
    finally:
        client.close()
