"""Bring your own collection: read an existing collection's schema and a sample of its rows, writing nothing.

What a custom user needs to search a collection loadgen did not make: the primary key, the vector field and its
dim, the scalar fields, and values that fit them, so ``query_vector()`` returns vectors like the stored ones and
``filter()`` expressions that select real rows. Read once per process and collection (``describe_collection`` and one
``query`` of up to ``SAMPLE`` rows), never per user.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pymilvus import DataType, MilvusException

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import collection

SAMPLE = 100
VECTOR_TYPES = (DataType.FLOAT_VECTOR,)  # query_vector() makes float vectors; others are listed but not offered
SCALAR_TYPES = {
    DataType.INT8: "int", DataType.INT16: "int", DataType.INT32: "int", DataType.INT64: "int",
    DataType.FLOAT: "float", DataType.DOUBLE: "float", DataType.BOOL: "bool", DataType.VARCHAR: "str",
}  # fmt: skip


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    primary_key: str
    vector_field: str
    dim: int
    scalar_fields: dict[str, str]  # name -> "int", "float", "bool" or "str"
    owned: bool  # created by loadgen (then writable like its own collections)
    sample_vectors: list[list[float]] = field(default_factory=list)
    sample_values: dict[str, list[Any]] = field(default_factory=dict)  # scalar field -> values seen in the sample


def _dtype(f: dict[str, Any]) -> Any:
    t = f.get("type")
    return DataType(t) if isinstance(t, int) else t


def read(settings: Settings, name: str) -> CollectionInfo:
    """Describe ``name`` and sample it. One-line ``LoadgenError`` when it is missing, has no float vector field or
    is not loaded (loadgen never loads a collection it did not create)."""
    client = collection.connect(settings)
    t = settings.timeout
    try:
        if not client.has_collection(name, timeout=t):
            raise LoadgenError(f"collection {name!r} does not exist on {collection.redact_uri(settings.uri)}")
        desc = client.describe_collection(name, timeout=t)
        fields = desc.get("fields", [])
        pk = next((f["name"] for f in fields if f.get("is_primary")), "")
        vectors = [f for f in fields if _dtype(f) in VECTOR_TYPES]
        if not vectors:
            raise LoadgenError(f"collection {name!r} has no FLOAT_VECTOR field to search")
        vec = vectors[0]
        dim = int(vec.get("params", {}).get("dim", 0))
        scalars = {f["name"]: SCALAR_TYPES[_dtype(f)] for f in fields if _dtype(f) in SCALAR_TYPES and f["name"] != pk}
        state = client.get_load_state(name, timeout=t).get("state")
        if "Loaded" not in str(state):
            raise LoadgenError(
                f"collection {name!r} is not loaded ({state}); load it first: loadgen does not load or write a "
                "collection it did not create"
            )
        rows = client.query(
            name, filter="", limit=SAMPLE, output_fields=[vec["name"], *scalars], consistency_level="Bounded", timeout=t
        )
        values: dict[str, list[Any]] = {f: [] for f in scalars}
        for row in rows:
            for f in scalars:
                if row.get(f) is not None and row[f] not in values[f]:
                    values[f].append(row[f])
        return CollectionInfo(
            name=name, primary_key=pk, vector_field=vec["name"], dim=dim, scalar_fields=scalars,
            owned=collection.is_owned(desc), sample_vectors=[list(map(float, r[vec["name"]])) for r in rows],
            sample_values={f: v for f, v in values.items() if v},
        )  # fmt: skip
    except MilvusException as exc:
        raise LoadgenError(f"cannot read collection {name!r}: {exc.message}") from None
    finally:
        client.close()


_cache: dict[tuple[str, str], CollectionInfo] = {}
_lock = threading.Lock()


def info_for(settings: Settings, name: str) -> CollectionInfo:
    """``read`` once per process and (server, collection)."""
    key = (settings.uri, name)
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = read(settings, name)
        return found


def filter_for(info: CollectionInfo, pick: Any) -> str:
    """A filter expression over a scalar field that selects at least one sampled row; ``pick(seq)`` chooses."""
    if not info.sample_values:
        return ""
    name = pick(sorted(info.sample_values))
    value = pick(info.sample_values[name])
    kind = info.scalar_fields[name]
    if kind == "str":
        return f'{name} == "{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
    if kind == "bool":
        return f"{name} == {str(bool(value)).lower()}"
    return f"{name} <= {value}" if kind == "float" else f"{name} == {value}"
