"""Sizing for a target: how many query nodes / replicas serve ``--target-qps`` with headroom, and how much memory the
vectors and their index take per replica.

Throughput comes from measured runs: the per-replica QPS that holds the SLO (or the peak, without an SLO), and the
scaling efficiency measured across replica counts when the runs have more than one, else an assumed one that the
report states. Memory is a formula per index type, written out on the page with the source it follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loadgen.config.settings import INDEX_DEFAULTS

FLOAT_BYTES = 4  # float32 vectors
ID_BYTES = 4  # graph links and inverted-list entries as 4-byte ids, as the sources below count them
# Milvus standalone builds AUTOINDEX on float vectors as HNSW (milvus.yaml autoIndex.params.build: M 18,
# efConstruction 240); an assumption for other deployments, stated in the report
AUTOINDEX_AS = ("HNSW", {"M": 18})
SOURCES = {
    "FLAT": "https://milvus.io/docs/index-explained.md (FLAT: the raw float32 vectors, no extra structure)",
    "IVF_FLAT": "https://milvus.io/docs/ivf-flat.md and https://milvus.io/ai-quick-reference/how-much-memory-overhead-"
    "is-typically-introduced-by-indexes-like-hnsw-or-ivf-for-a-given-number-of-vectors-and-how-can-this-overhead-be-"
    "managed-or-configured (centroids nlist x dim x 4 B plus one 4 B id per vector)",
    "HNSW": "https://milvus.io/docs/hnsw.md and https://milvus.io/ai-quick-reference/how-much-memory-overhead-is-"
    "typically-introduced-by-indexes-like-hnsw-or-ivf-for-a-given-number-of-vectors-and-how-can-this-overhead-be-"
    "managed-or-configured (graph links as 4 B ids; 2 x M of them on the bottom layer); the Milvus sizing tool (https://milvus.io/blog/introducing-the-milvus-sizing-tool-calculating-"
    "and-optimizing-your-milvus-deployment-resources.md) for the full picture",
}
DEFAULT_HEADROOM = 0.3  # plan to run at 70% of measured capacity: bursts, compaction and index builds need room
DEFAULT_EFFICIENCY = 0.9  # assumed when only one replica count was measured: each replica adds 90% of the first


@dataclass(frozen=True)
class Memory:
    index: str
    bytes_per_replica: int
    formula: str
    source: str
    assumption: str = ""


def memory(index: str, vectors: int, dim: int, params: dict[str, Any] | None = None) -> Memory:
    """Vector data plus index structure held in query-node memory for one replica (float32 vectors)."""
    index = index.upper()
    params = {**INDEX_DEFAULTS.get(index, {}), **(params or {})}
    raw = vectors * dim * FLOAT_BYTES
    if index == "AUTOINDEX":
        as_index, as_params = AUTOINDEX_AS
        merged = {**as_params, **params}
        est = memory(as_index, vectors, dim, merged)
        note = f"AUTOINDEX estimated as {as_index} M={merged['M']} (Milvus standalone's default for float vectors)"
        return Memory("AUTOINDEX", est.bytes_per_replica, est.formula, est.source, note)
    if index == "FLAT":
        return Memory(index, raw, f"N x dim x 4 B = {vectors} x {dim} x 4", SOURCES["FLAT"])
    if index == "IVF_FLAT":
        nlist = int(params.get("nlist", 128))
        total = raw + nlist * dim * FLOAT_BYTES + vectors * ID_BYTES
        formula = (
            f"N x dim x 4 + nlist x dim x 4 + N x 4 B = {vectors} x {dim} x 4 + {nlist} x {dim} x 4 + {vectors} x 4"
        )
        return Memory(index, total, formula, SOURCES["IVF_FLAT"])
    if index == "HNSW":
        m = int(params.get("M", 16))
        total = raw + vectors * 2 * m * ID_BYTES
        formula = f"N x (dim x 4 + 2 x M x 4) B = {vectors} x ({dim} x 4 + 2 x {m} x 4)"
        return Memory(index, total, formula, SOURCES["HNSW"])
    raise ValueError(f"no memory formula for index type {index!r}")


def replicas_needed(target_qps: float, per_replica_qps: float, efficiency: float, headroom: float) -> int:
    """Smallest n whose capacity, run at (1 - headroom) of it, covers the target. One replica gives
    ``per_replica_qps``; n > 1 replicas give ``n x per_replica_qps x efficiency``."""
    if per_replica_qps <= 0:
        raise ValueError("per-replica QPS must be positive")
    usable = per_replica_qps * (1.0 - headroom)
    if target_qps <= usable:
        return 1
    return max(2, math.ceil(target_qps / (usable * efficiency) - 1e-9))


def capacity(n: int, per_replica_qps: float, efficiency: float) -> float:
    return per_replica_qps if n == 1 else n * per_replica_qps * efficiency


# replicas serve searches and queries; writes go through the data path and are not multiplied by replicas
READ_WORDS = ("search", "query", "get", "retrieve")


def is_read(name: str, request_type: str = "") -> bool:
    """Whether a request row reads: its operation's kind in its layer's table; for rows no table makes (a custom
    locustfile's), a read word in its name."""
    from loadgen.clients import row_kind

    kind = row_kind(request_type, name) if request_type else None
    return kind == "read" if kind is not None else any(word in name for word in READ_WORDS)


def _basis(curve: dict[str, Any], slo_given: bool) -> tuple[float, str]:
    if curve.get("slo"):
        return float(curve["slo"]["qps"]), "highest QPS holding the p99 SLO"
    if slo_given:
        return 0.0, "no measured level held the p99 SLO"
    return float(curve["peak_qps"]), "peak QPS (no SLO given)"


def plan(
    analysis: dict[str, Any],
    *,
    target_qps: float,
    vectors: int,
    dim: int,
    index: str,
    index_params: dict[str, Any] | None,
    headroom: float = DEFAULT_HEADROOM,
    assumed_efficiency: float = DEFAULT_EFFICIENCY,
    measured_shape: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Replicas per operation (each measured curve's capacity) and the memory they need. ``measured_shape`` is the
    (vectors, dim) the runs measured: a target of another size gets a warning, since QPS depends on it."""
    mem = memory(index, vectors, dim, index_params)
    rows = []
    skipped = []
    for c in analysis["curves"]:
        key = f"{c['type']} {c['name']}"
        if not is_read(c["name"], c["type"]):
            continue
        measured_qps, basis = _basis(c, analysis["slo_p99_ms"] is not None)
        if measured_qps <= 0:
            skipped.append(f"{key}: {basis}")
            continue
        table = analysis["replica_scaling"].get(key)
        assumptions = []
        if table:  # measured at several replica counts: per-replica QPS from the smallest, efficiency from the largest
            per_replica = table[0]["peak_qps"] / table[0]["count"]
            efficiency = min(1.0, table[-1]["efficiency"])
            eff_basis = f"measured across {', '.join(str(int(t['count'])) for t in table)} replicas"
            if c["replicas"] not in (None, table[0]["count"]):
                continue  # one row per operation: the smallest replica count's curve
        else:
            replicas = c["replicas"] or 1
            per_replica = measured_qps / replicas
            efficiency = assumed_efficiency
            eff_basis = "assumed: only one replica count measured"
            if c["replicas"] is None:
                assumptions.append("results do not record a replica count: assumed 1")
        n = replicas_needed(target_qps, per_replica, efficiency, headroom)
        rows.append(
            {
                "operation": key, "kind": c["kind"], "processes": c["processes"], "basis": basis,
                "per_replica_qps": per_replica, "efficiency": efficiency, "efficiency_basis": eff_basis,
                "replicas": n, "capacity_qps": capacity(n, per_replica, efficiency),
                "memory_bytes_total": n * mem.bytes_per_replica, "assumptions": assumptions,
            }
        )  # fmt: skip
    notes = []
    if measured_shape and (vectors, dim) != measured_shape:
        notes.append(
            f"the runs measured {measured_shape[0]:,} vectors of dim {measured_shape[1]}, not the target's {vectors:,} "
            f"of dim {dim}: per-replica QPS at the target's size is likely lower; measure at that size to be sure"
        )
    return {
        "target_qps": target_qps,
        "vectors": vectors,
        "dim": dim,
        "headroom": headroom,
        "memory": {**mem.__dict__, "gib_per_replica": mem.bytes_per_replica / 2**30},
        "memory_other_indexes": [
            {**(m := memory(ix, vectors, dim)).__dict__, "gib_per_replica": m.bytes_per_replica / 2**30}
            for ix in ("FLAT", "IVF_FLAT", "HNSW", "AUTOINDEX")
        ],
        "rows": rows,
        "not_sized": skipped,
        "notes": [
            *notes,
            "sized on read operations (searches, queries, gets): replicas multiply read capacity, not writes",
            "one replica per query node: each holds a full copy of the vectors and index",
            "memory counts vectors and the vector index only; scalar fields, segment and runtime overheads come on top",
            "measured QPS is what this load generator reached: if its own CPU was busy, the server may do more",
        ],
    }


# ---- the generator's own size -----------------------------------------------------------------------------------
# One Python worker process holds the interpreter lock for its request handling: about one core is what it can use,
# whatever the pod offers. bench/bench_cost.py measures the client CPU per call of each client path.
PROCESS_CORES = 1.0


def generator(
    target_qps: float, cpu_us_per_call: float, *, pod_cpu: float = 1.0, headroom: float = DEFAULT_HEADROOM
) -> dict[str, Any]:
    """Worker processes and pods that drive ``target_qps`` when one call costs the generator ``cpu_us_per_call``
    microseconds of CPU (all its threads). A process gets ``min(pod_cpu, 1)`` core and runs at (1 - headroom) of it,
    so the schedule stays on time; a pod of ``pod_cpu`` cores runs ``max(1, floor(pod_cpu))`` processes."""
    if target_qps <= 0 or cpu_us_per_call <= 0 or pod_cpu <= 0:
        raise ValueError("target QPS, CPU per call and pod CPU must be positive")
    if not 0.0 <= headroom < 1.0:
        raise ValueError("headroom must be in [0, 1)")
    cores_per_process = min(pod_cpu, PROCESS_CORES)
    qps_per_process = cores_per_process * (1.0 - headroom) / (cpu_us_per_call * 1e-6)
    processes = max(1, math.ceil(target_qps / qps_per_process - 1e-9))
    per_pod = max(1, math.floor(pod_cpu + 1e-9))
    pods = math.ceil(processes / per_pod)
    return {
        "target_qps": target_qps,
        "cpu_us_per_call": cpu_us_per_call,
        "cores_needed": target_qps * cpu_us_per_call * 1e-6,
        "qps_per_process": qps_per_process,
        "processes": processes,
        "pod_cpu": pod_cpu,
        "processes_per_pod": per_pod,
        "pods": pods,
        "headroom": headroom,
        "formula": (
            f"processes = ceil({target_qps:g} QPS x {cpu_us_per_call:g} us / ({cores_per_process:g} core x "
            f"{1 - headroom:g})); pods = ceil(processes / {per_pod})"
        ),
    }
