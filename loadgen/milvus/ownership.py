"""Who owns a collection, and so what loadgen may create, write, reuse and drop: one decision for every layer.

A collection is **loadgen's** when it carries ``MARKER`` in its description (the schemas loadgen and LangChain
create) or ``OWNER_PROPERTY`` (LlamaIndex's schema, which has no description of ours). A collection is **this
run's** when it also carries ``RUN_PROPERTY`` with this run's id: only those are dropped at the end (unless
``--keep-data``). A collection of loadgen's kept by an earlier run and reused here is kept too, unless the user
asks (``--drop-reused``, or ``--recreate`` at the start). Anything else is a user's: never dropped, never filled,
and written only with ``--allow-foreign-collection`` (then the layers' writes touch only rows this run inserted).

The checks run in one order for every layer (``claim``): exists? loadgen's? ``--require-existing``,
``--recreate``, ``--allow-foreign-collection``, then the schema and dimension. ``claim`` only reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pymilvus import MilvusClient

from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError

MARKER = "[created-by:milvus-loadgen]"
OWNER_PROPERTY = ("loadgen.created_by", "milvus-loadgen")  # for collections a library creates with its own schema
DROP_TIMEOUT_S = 60.0  # the deadline of a drop at the end of a run, once the server has answered
RUN_PROPERTY = "loadgen.run_id"  # the run that created the collection: the one that may drop it
# one id per process: a Locust master (or a local runner) is one run; `loadgen run` passes --run-id to every level
_PROCESS_RUN_ID = uuid.uuid4().hex[:16]
# (uri, name) of the collections this process created: this run's even when the server lost their properties
# (Milvus 2.3.5 can, when it is killed and restarted during the run: the fault tests do it)
_created_here: set[tuple[str, str]] = set()


def created(settings: Settings, name: str) -> None:
    """Remember that this process just created ``name`` (every layer's setup says so, right after creating it)."""
    _created_here.add((settings.uri, name))


def run_id(settings: Settings) -> str:
    return settings.run_id or _PROCESS_RUN_ID


def is_owned(desc: dict[str, Any]) -> bool:
    """Did loadgen create the collection ``desc`` (a MilvusClient.describe_collection result) describes?"""
    props = desc.get("properties") or {}
    return MARKER in (desc.get("description") or "") or props.get(OWNER_PROPERTY[0]) == OWNER_PROPERTY[1]


def is_this_runs(desc: dict[str, Any], settings: Settings) -> bool:
    """Did this run create it? (A collection loadgen created before run ids existed counts as an earlier run's.)"""
    return is_owned(desc) and (desc.get("properties") or {}).get(RUN_PROPERTY) == run_id(settings)


@dataclass(frozen=True)
class Layout:
    """What a layer needs of an existing collection: its vector field and the fields it writes."""

    vector_field: str
    fields: tuple[str, ...]
    writer: str  # "loadgen", "the LangChain layer", "MilvusVectorStore": who writes those fields
    dynamic_ok: bool = True  # a dynamic field takes the fields the schema lacks

    def check(self, desc: dict[str, Any], name: str, settings: Settings, owned: bool) -> None:
        fields = {f["name"]: f for f in desc.get("fields", [])}
        vector = fields.get(self.vector_field)
        if vector is None:
            raise LoadgenError(
                f"collection {name!r} has no field named {self.vector_field!r}; {self.writer} writes "
                f"{', '.join(self.fields)}"
            )
        dim = int(vector.get("params", {}).get("dim", 0))
        if dim != settings.dim:
            hint = "pass --recreate to rebuild it" if owned else "choose --dim to match or another --collection"
            raise LoadgenError(
                f"dimension mismatch: collection {name!r} has dim {dim}, --dim is {settings.dim}; {hint}"
            )
        dynamic = self.dynamic_ok and bool(desc.get("enable_dynamic_field"))
        missing = [f for f in self.fields if f not in fields and not dynamic]
        if missing:
            raise LoadgenError(f"collection {name!r} lacks fields {self.writer} writes: {', '.join(missing)}")


@dataclass(frozen=True)
class Claim:
    """What a run may do with one collection, decided before anything is written."""

    name: str
    exists: bool  # before a --recreate drops it
    owned: bool  # loadgen's (or about to be created by loadgen): may be filled
    ours: bool  # created by this run (an earlier level of the same sweep, or a swarm before this one)
    recreate: bool  # loadgen's from an earlier run, to be dropped and made again

    @property
    def create(self) -> bool:
        return not self.exists or self.recreate


def claim(client: MilvusClient, settings: Settings, name: str, layout: Layout) -> Claim:
    """The one order of checks, read-only. Raises a one-line LoadgenError for anything the run must not do."""
    t = settings.timeout
    if not client.has_collection(name, timeout=t):  # 1. exists?
        if settings.require_existing:
            raise LoadgenError(f"collection {name!r} does not exist and --require-existing forbids creating it")
        return Claim(name, exists=False, owned=True, ours=True, recreate=False)
    desc = client.describe_collection(name, timeout=t)
    owned = is_owned(desc)  # 2. loadgen's?
    if settings.recreate:  # 3./4. --require-existing forbids creating, --recreate creates again
        if settings.require_existing:
            raise LoadgenError("--recreate and --require-existing exclude each other: --recreate creates it again")
        if not owned:
            raise LoadgenError(f"--recreate refused: collection {name!r} was not created by loadgen")
        return Claim(name, exists=True, owned=True, ours=True, recreate=True)
    if not owned and not settings.allow_foreign_collection:  # 5. a user's
        raise LoadgenError(
            f"collection {name!r} exists and was not created by loadgen; choose another --collection, "
            "or pass --allow-foreign-collection to write into it"
        )
    layout.check(desc, name, settings, owned)  # 6. schema and dimension
    return Claim(name, exists=True, owned=owned, ours=is_this_runs(desc, settings), recreate=False)


def clear_for_create(client: MilvusClient, settings: Settings, c: Claim) -> None:
    """Before creating: drop loadgen's earlier collection for ``--recreate`` (``claim`` allowed only that)."""
    if c.recreate:
        client.drop_collection(c.name, timeout=settings.timeout)


def stamp(client: MilvusClient, settings: Settings, name: str) -> None:
    """Mark a collection this run just created as loadgen's and this run's."""
    created(settings, name)
    props = {OWNER_PROPERTY[0]: OWNER_PROPERTY[1], RUN_PROPERTY: run_id(settings)}
    client.alter_collection_properties(name, properties=props, timeout=settings.timeout)


@dataclass(frozen=True)
class Released:
    dropped: bool
    message: str  # what happened and why, for the log


def decide_release(
    desc: dict[str, Any] | None, settings: Settings, name: str, *, created_here: bool = False
) -> Released:
    """What the end of a run does with ``name`` (``desc``: its description, None if it is gone; ``created_here``:
    this process created it, whatever its properties say now). No I/O."""
    if desc is None:
        return Released(False, f"collection {name} is already gone")
    if not (is_owned(desc) or created_here):
        return Released(False, f"kept collection {name}: not created by loadgen")
    if settings.keep_data:
        return Released(False, f"kept collection {name} (--keep-data)")
    if created_here or is_this_runs(desc, settings):
        return Released(True, f"dropped collection {name} (created by this run; pass --keep-data to keep it)")
    if settings.drop_reused:
        return Released(True, f"dropped collection {name} (reused from an earlier run; --drop-reused)")
    return Released(
        False, f"kept collection {name}: reused from an earlier run; pass --recreate or --drop-reused to drop it"
    )


def release(client: MilvusClient, settings: Settings, name: str) -> Released:
    """At the end of a run: drop ``name`` if this run created it (or ``--drop-reused`` asks), else keep it."""
    t = settings.timeout
    desc = client.describe_collection(name, timeout=t) if client.has_collection(name, timeout=t) else None
    out = decide_release(desc, settings, name, created_here=(settings.uri, name) in _created_here)
    if out.dropped:
        # the server just answered, so it is up; a drop releases the loaded collection first, which on a busy
        # server can take longer than one call's --timeout (a drop that gave up at 10 s left the collection behind
        # for a moment in a CI run). A frozen server never got here: describe failed within --timeout.
        client.drop_collection(name, timeout=max(t, DROP_TIMEOUT_S))
        _created_here.discard((settings.uri, name))
    return out
