"""loadgen's options, declared once, as the fields of the frozen ``Settings`` object they become.

Each option is a field made with ``option(...)``: its default, help text and how its flag's text is parsed. The same
declaration feeds Locust's parser (``init_command_line_parser``: env vars, web UI, secrets masked), the plain argparse
parser of ``loadgen run`` (which checks the settings before Locust starts) and the argv handed to Locust. This module
is the only one that reads ``LOADGEN_*`` environment variables.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from loadgen.config import values as v
from loadgen.errors import LoadgenError

INDEX_TYPES = ("AUTOINDEX", "HNSW", "IVF_FLAT", "FLAT")
# index build parameters unless --index-params says otherwise (the collection's, and sizing's memory formulas)
INDEX_DEFAULTS: dict[str, dict[str, int]] = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 128}}
METRICS = ("COSINE", "L2", "IP")
# --output-fields: what a search returns beside each hit's id and distance (loadgen.clients.shape)
OUTPUT_PROFILES = ("ids", "scalar", "vectors", "all")
CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")
SECRET_FIELDS = ("milvus_token", "openai_api_key")
selectivity_filter = v.selectivity_filter
positive_ints = v.positive_ints
normalize_uri = v.normalize_uri


def option(
    default: Any,
    help: str,
    *,
    raw: Any = MISSING,
    typ: type | None = None,
    parse: Callable[[Any, str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
    ui: bool = True,
    load: bool = False,
    shown: tuple[str, ...] = ("loadgen", "locust"),
) -> Any:
    """A settings field that is also a flag. ``raw``: the flag's own default when it differs from the parsed value
    (``""`` for a JSON option whose value is ``{}``); ``parse(text, name)``: flag text -> value. ``load``: it applies
    to a load test only (not to ``loadgen compare``). ``shown``: the parsers whose ``--help`` lists it (``loadgen``'s
    commands, Locust's): plumbing that ``loadgen run`` sets itself is accepted everywhere and listed nowhere."""
    raw = default if raw is MISSING else raw
    meta = {"help": help, "raw": raw, "type": typ or type(raw), "parse": parse, "choices": choices}
    meta.update(secret=secret, ui=ui, load=load, shown=shown)
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Everything a user, adapter or setup step needs; built once from parsed options."""

    uri: str
    milvus_token: str = option("", "Milvus token (user:password or API key); prefer the env var", secret=True)
    collection: str = option("loadgen_bench", "collection to create (or reuse if loadgen created it)")
    dim: int = option(128, "vector dimension")
    rows: int = option(
        10_000,
        "rows inserted once per test run before users start; with --dataset: at most this many of its base vectors "
        "(0: all of them)",
    )
    index_type: str = option("AUTOINDEX", "vector index", choices=INDEX_TYPES)
    metric_type: str = option("COSINE", "distance metric", choices=METRICS)
    index_params: dict[str, Any] = option(
        {}, 'index build params as JSON, e.g. {"M": 16, "efConstruction": 200}', raw="", parse=v.json_object
    )
    search_params: dict[str, Any] = option(
        {}, 'search params as JSON, e.g. {"ef": 64} or {"nprobe": 16}', raw="", parse=v.json_object
    )
    top_k: int = option(10, "hits per search")
    nq: int = option(
        1,
        "query vectors per search request, each scored against its own ground truth (the pymilvus layers and the "
        "fast path; the framework layers search one query per call)",
        load=True,
    )
    output_fields: str = option(
        "ids",
        "what a search returns with each hit: ids (id and distance only), scalar (the collection's scalar fields), "
        "vectors (the vector field), all (both); the pymilvus layers and the fast path",
        choices=OUTPUT_PROFILES,
        load=True,
    )
    filter: str = option("", 'filter expression for search and query, e.g. "category < 10"')
    filter_selectivity: float = option(
        0.0,
        "share of rows searches and queries keep, 0 < s <= 1: the filter category < round(100*s) (not with --filter)",
        raw="",
        parse=v.selectivity,
    )
    dataset: str = option(
        "",
        "insert this dataset's base vectors and measure recall (every layer): synthetic:uniform, "
        "synthetic:clustered[:K], a .npy/.fvecs/.bvecs/.hdf5 file or a VectorDBBench parquet dir",
    )
    queries: str = option("", "query vectors for --dataset (.npy/.fvecs/.bvecs); default: the dataset's own")
    neighbors: str = option("", "true neighbor ids of --queries (.ivecs/.npy); default: computed exactly")
    groundtruth_cache: str = option(
        "", "directory caching computed ground truth (default ~/.cache/milvus-loadgen/groundtruth)", ui=False
    )
    consistency_level: str = option("Bounded", "consistency level of searches and queries", choices=CONSISTENCY_LEVELS)
    batch_size: int = option(10, "rows per insert/upsert/delete call; ids per get")
    fanout: int = option(10, "concurrent calls gathered by the async fanout task", load=True)
    weights: dict[str, int] = option(
        {},
        "task weights op=w,... by operation name (0 disables; unnamed ops of a named layer: 0)",
        raw="",
        parse=v.weights,
        load=True,
    )
    timeout: float = option(10.0, "seconds before any single Milvus call fails")
    arrival_rate: float = option(
        0.0,
        "open model: total requests per second across all users and workers, sent on schedule whatever the latency "
        "(latency counted from the intended send time); 0: closed model (each user waits for its answer)",
        parse=lambda text, name: v.rate(text, v.flag(name)),
        load=True,
    )
    arrival_process: str = option(
        "uniform", "open model schedule: evenly spaced sends, or poisson (independent arrivals)",
        choices=("uniform", "poisson"), load=True,
    )  # fmt: skip
    driver: str = option(
        "auto",
        "how each store call waits: auto (from the user class, its operations and the load model, never the number "
        "of users), greenlet, thread or loop (README: How it is built)",
        parse=v.name,
        load=True,
    )
    warmup: float = option(
        0.0,
        "leave the first span of the run out of every figure, e.g. 10s: at its end every statistic (Locust's, the "
        "HDR latencies, recall, the open model's counts, Milvus's own, the generator's) is reset together, as "
        "Locust's --reset-stats does at the end of spawning; counted inside --run-time",
        raw="",
        parse=v.duration,
        load=True,
    )
    max_in_flight: int = option(
        100, "open model and streams: outstanding requests per user before sends are dropped", load=True
    )
    stream_rates: dict[str, float] = option(
        {},
        "fixed-rate background operations next to the workload, total calls/s: e.g. insert=20 or upsert=10,delete=10",
        raw="",
        parse=v.stream_rates,
        load=True,
    )
    embedding: str = option(
        "fake", "text embeddings for LangChain/LlamaIndex: fake (offline), local, openai",
        choices=("fake", "local", "openai"),
    )  # fmt: skip
    embedding_model: str = option("", "model name for --embedding openai (default text-embedding-3-small)")
    seed: int = option(42, "seed for generated vectors")
    # the retrieval layer: full-text, sparse, hybrid and multi-tenant workloads
    corpus: str = option(
        "generated",
        "retrieval layer: text corpus: generated (Zipf-distributed words, --rows documents, offline), a .jsonl or "
        ".parquet file with a text column, or a BEIR directory (corpus.jsonl, queries.jsonl, qrels/*.tsv)",
    )
    text_column: str = option("text", "retrieval layer: the text column of a --corpus .jsonl/.parquet file")
    tenants: int = option(8, "retrieval layer: tenants (values of the partition-key field); 1: one tenant")
    tenant_zipf: float = option(
        1.1, "retrieval layer: tenant traffic skew: tenant r (1 = hottest) gets weight 1/r^s; 0: uniform"
    )
    require_existing: bool = option(
        False,
        "use a collection that already exists (loadgen's, or a foreign one with --allow-foreign-collection); "
        "never create one",
    )
    allow_foreign_collection: bool = option(False, "write into an existing collection loadgen did not create")
    recreate: bool = option(False, "drop and recreate the collection if loadgen created it earlier")
    keep_data: bool = option(False, "keep the collection loadgen created when the test ends")
    drop_reused: bool = option(
        False, "at the end, also drop a collection of loadgen's that this run reused (kept by an earlier run)"
    )
    run_id: str = option(
        "",
        "the run a collection was created by is stamped on it; a run drops only its own "
        "(default: one id per Locust master process; `loadgen run` gives every level of a sweep the same one)",
        ui=False,
    )
    tls_ca_file: str = option("", "CA certificate (PEM) that signed the server's certificate; needs an https:// host")
    tls_server_name: str = option("", "name to verify the server's certificate against (default: the host)")
    tls_client_cert: str = option("", "client certificate (PEM) for mutual TLS; with --tls-client-key")
    tls_client_key: str = option("", "client private key (PEM) for mutual TLS; with --tls-client-cert")
    master_timeout: float = option(
        60.0,
        "a worker quits when it has not heard from the master for this many seconds (Locust's 60 by default)",
        ui=False,
        load=True,
    )
    latency_file: str = option(
        "",
        "write microsecond latency percentiles (HDR, merged from workers) to this JSON",
        ui=False,
        load=True,
        shown=(),
    )
    recall_file: str = option(
        "", "write recall statistics (merged from workers) to this JSON", ui=False, load=True, shown=()
    )
    retrieval_file: str = option(
        "",
        "retrieval layer: write relevance, iterator first-page, tenant and freshness statistics to this JSON",
        ui=False,
        load=True,
        shown=(),
    )
    open_loop_file: str = option(
        "", "write open-model send counts (merged from workers) to this JSON", ui=False, load=True, shown=()
    )
    flows_file: str = option(
        "", "write flow step statistics (merged from workers) to this JSON", ui=False, load=True, shown=()
    )
    workers_file: str = option(
        "", "master: write the workers seen and those that went missing to this JSON", ui=False, load=True, shown=()
    )
    results_dir: str = option(
        "",
        "the master writes results.json (and latency.json, recall.json, open_loop.json) to this directory",
        ui=False,
        load=True,
        shown=("locust",),
    )
    run_info: str = option(
        "", "JSON merged into results.json's run section (set by loadgen run)", ui=False, load=True, shown=()
    )
    check_p99_ms: float | None = option(
        None, "checks: fail (exit 3) if any request's p99 is above this", typ=float, load=True
    )
    check_fail_ratio: float | None = option(
        None, "checks: fail (exit 3) if more than this share of the store calls failed", typ=float, load=True
    )
    check_min_qps: float | None = option(
        None, "checks: fail (exit 3) if the total request rate is below this", typ=float, load=True
    )
    check_min_recall: float | None = option(
        None, "checks: fail (exit 3) if a mean recall is below this", typ=float, load=True
    )
    check_min_recall_p10: float | None = option(
        None,
        "checks: fail (exit 3) if the p10 of per-query recall is below this (each recall series; a runbook's every "
        "search step and all of them)",
        typ=float,
        load=True,
    )
    check_max_index_lag_s: float | None = option(
        None, "checks: fail (exit 3) if the index lag (--ingest-readiness) ever exceeds this many seconds", typ=float,
        load=True,
    )  # fmt: skip
    ingest_readiness: bool = option(
        False,
        "time every pymilvus insert from acknowledgement to searchable (a query at --consistency-level sees it) to "
        "indexed (describe_index counts it), and the index lag (README: Ingest readiness)",
        load=True,
    )
    check_min_qvps: float | None = option(
        None,
        "checks: fail (exit 3) if the query vectors searched per second (all rows) are below this",
        typ=float,
        load=True,
    )
    check_max_response_bytes: float | None = option(
        None,
        "checks: fail (exit 3) if any search row's mean response bytes per call are above this",
        typ=float,
        load=True,
    )
    # Milvus's own metrics, scraped by the master (loadgen.stats.server_metrics)
    milvus_metrics_url: str = option(
        "",
        "Milvus Prometheus endpoint scraped during the run, e.g. http://HOST:9091/metrics (loadgen run: embedded)",
        load=True,
    )
    server_metrics_file: str = option(
        "", "write Milvus's own figures over the run to this JSON", ui=False, load=True, shown=()
    )
    generator_file: str = option(
        "", "write the generator's own load (CPU, loop lag; merged) to this JSON", ui=False, load=True, shown=()
    )
    prometheus_port: int = option(
        0,
        "master: serve loadgen's live figures for Prometheus on this port, all interfaces (0: off)",
        ui=False,
        load=True,
    )
    # Locust's --otel: store calls as OpenTelemetry spans (loadgen.stats.tracing)
    otel_sample: float = option(
        0.01,
        "--otel: share of store calls traced by draw (failures and each row's slowest calls are kept too), 0-1",
        load=True,
    )
    otel_slow_ms: float | None = option(
        None,
        "--otel: keep every call at least this slow (default: at or above its row's running p99)",
        typ=float,
        load=True,
    )
    # not options: set by loadgen itself
    total_users: int = 0  # users in the whole test, set by the master at test start (splits the rates)
    # --dataset rows the collection holds when they differ from the --rows selection (a reused collection), set by
    # the master after it checked they are the dataset's first rows: the ground truth is computed over these
    truth_rows: int = 0
    openai_api_key: str = field(default="", repr=False)  # from OPENAI_API_KEY only

    def same_setup(self, other: Settings) -> bool:
        """Whether ``other`` prepares the same collections: equal but for what loadgen sets at test start."""
        return replace(self, total_users=other.total_users) == other

    @classmethod
    def from_options(cls, options: argparse.Namespace, host: str | None, token: str = "") -> Settings:
        """``token``: one taken off the command line earlier (see hooks); else the option, else the env var."""
        if not host:
            raise LoadgenError(
                "no Milvus host: pass --host http://HOST:19530, or use `loadgen run` to start an embedded Milvus"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "uri" or not hasattr(options, f.name):
                continue
            raw, parse = getattr(options, f.name), f.metadata.get("parse")
            if parse:
                values[f.name] = parse(raw if raw is not None else "", f.name)
            elif isinstance(raw, str) and "help" in f.metadata:  # text from the web UI's form (or a workload file)
                values[f.name] = v.typed(raw, f.metadata["type"], f.name, f.metadata["choices"], f.metadata["raw"])
            else:
                values[f.name] = raw
        if values.get("filter_selectivity"):
            if values.get("filter"):
                raise LoadgenError("--filter and --filter-selectivity exclude each other: pass one of them")
            values["filter"] = v.selectivity_filter(values["filter_selectivity"])
        values["milvus_token"] = values.get("milvus_token") or token or os.environ.get(_env_name("milvus_token"), "")
        values["openai_api_key"] = os.environ.get("OPENAI_API_KEY", "")
        settings = cls(uri=v.normalize_uri(host), **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("dim", "batch_size", "top_k", "nq", "fanout", "max_in_flight"):
            if getattr(self, name) < 1:
                raise LoadgenError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.rows < 0:
            raise LoadgenError(f"--rows must be 0 or more, got {self.rows}")
        if self.timeout <= 0:
            raise LoadgenError(f"--timeout must be positive, got {self.timeout}")
        if not self.collection.replace("_", "a").isalnum() or self.collection[0].isdigit():
            raise LoadgenError(f"--collection {self.collection!r}: use letters, digits and underscores")
        if self.recreate and self.require_existing:
            raise LoadgenError("--recreate and --require-existing exclude each other: --recreate creates it again")
        if self.tenants < 1:
            raise LoadgenError(f"--tenants must be at least 1, got {self.tenants}")
        if not 0 <= self.tenant_zipf <= 10:  # NaN fails too
            raise LoadgenError(f"--tenant-zipf must be between 0 and 10, got {self.tenant_zipf}")
        if self.master_timeout <= 0:
            raise LoadgenError(f"--master-timeout must be positive, got {self.master_timeout}")
        self._validate_otel()
        if not 0 <= self.prometheus_port <= 65535:
            raise LoadgenError(f"--prometheus-port must be 0 (off) or a TCP port, got {self.prometheus_port}")
        if self.milvus_metrics_url:
            v.metrics_url(self.milvus_metrics_url)
        self._validate_tls()

    def _validate_tls(self) -> None:
        files = {"--tls-ca-file": self.tls_ca_file, "--tls-client-cert": self.tls_client_cert}
        files["--tls-client-key"] = self.tls_client_key
        given = [flag for flag, path in files.items() if path] + (["--tls-server-name"] if self.tls_server_name else [])
        if given and not self.uri.startswith("https://"):
            raise LoadgenError(f"{', '.join(given)} need an https:// --host, got {self.uri.split('://')[0]}://")
        if bool(self.tls_client_cert) != bool(self.tls_client_key):
            raise LoadgenError("--tls-client-cert and --tls-client-key go together: pass both or neither")
        if self.tls_client_cert and not self.tls_ca_file:
            raise LoadgenError("mutual TLS (--tls-client-cert) also needs --tls-ca-file")
        for flag, path in files.items():
            if path and not os.path.isfile(path):
                raise LoadgenError(f"{flag} {path}: no such file")

    def client_kwargs(self, alias: str | None = None) -> dict[str, Any]:
        """What every client layer connects with: pymilvus MilvusClient/AsyncMilvusClient keyword arguments, and
        LangChain's ``connection_args`` and LlamaIndex's store keywords (both pass them on to pymilvus)."""
        kw: dict[str, Any] = {"uri": self.uri, "token": self.milvus_token, "timeout": self.timeout}
        if alias:
            kw["alias"] = alias
        if self.uri.startswith("https://"):
            kw["secure"] = True
        if self.tls_server_name:
            kw["server_name"] = self.tls_server_name
        if self.tls_client_cert:  # pymilvus: mutual TLS takes the CA as ca_pem_path
            kw.update(client_pem_path=self.tls_client_cert, client_key_path=self.tls_client_key)
            kw["ca_pem_path"] = self.tls_ca_file
        elif self.tls_ca_file:  # one-way TLS: pymilvus trusts server_pem_path as the root certificate
            kw["server_pem_path"] = self.tls_ca_file
        return kw

    def _validate_otel(self) -> None:
        if not 0 <= self.otel_sample <= 1:  # NaN fails too
            raise LoadgenError(f"--otel-sample must be between 0 and 1, got {self.otel_sample}")
        if self.otel_slow_ms is not None and not self.otel_slow_ms >= 0:
            raise LoadgenError(f"--otel-slow-ms must be 0 or more, got {self.otel_slow_ms}")

    def public(self) -> dict[str, Any]:
        """Settings safe to write into results and logs: the token is never included."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECRET_FIELDS}
        out["token_set"] = bool(self.milvus_token)
        return out


NO_SERVER_ENV = "LOADGEN_NO_SERVER"


def embedded_server_refused() -> str:
    """The value of ``LOADGEN_NO_SERVER`` ("" when unset). The test suite sets it for every test not marked
    ``milvus`` (tests/conftest.py): an embedded server such a test would start fails at once, in one line, instead
    of quietly costing its start and hiding that the test belongs in the server tier."""
    return os.environ.get(NO_SERVER_ENV, "")


def _options() -> list[Field[Any]]:
    """The fields that are options (declared with ``option``), in declaration order."""
    return [f for f in fields(Settings) if "help" in f.metadata]


def option_names() -> frozenset[str]:
    """Every option's name (its ``parsed_options`` attribute, and its field in the web UI's form)."""
    return frozenset(f.name for f in _options())


def _env_name(dest: str) -> str:
    return "LOADGEN_" + dest.upper()


def add_options(parser: Any, *, locust: bool, load: bool = True) -> None:
    """Register the options on ``parser`` (Locust's configargparse parser, or a plain argparse one); ``load=False``:
    only those that apply to something else than a load test (``loadgen compare``)."""
    # Locust's include_in_web_ui/is_secret only work on the parser itself, not on an argument group
    group = parser if locust else parser.add_argument_group("loadgen", "workload options (env LOADGEN_<NAME>)")
    for f in _options():
        meta, default = f.metadata, f.metadata["raw"]
        if meta["load"] and not load:
            continue
        shown = ("locust" if locust else "loadgen") in meta["shown"]
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"] if shown else argparse.SUPPRESS}
        env = _env_name(f.name)
        if locust and meta["secret"]:
            # no env_var here: Locust would put the env value into the web UI page as the field's default.
            # Settings.from_options reads the env var itself; the form shows an empty, masked field.
            kwargs.update(include_in_web_ui=True, is_secret=True)
        elif locust:
            kwargs.update(env_var=env, include_in_web_ui=meta["ui"])
        elif env in os.environ:  # plain argparse has no env_var support
            raw = os.environ[env]
            default = raw.lower() in ("1", "true", "yes") if isinstance(default, bool) else raw
        if isinstance(meta["raw"], bool):
            kwargs.update(action="store_true", default=default)
        else:
            kwargs.update(type=meta["type"], default=default)
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        group.add_argument(v.flag(f.name), **kwargs)


def add_option(parser: Any, name: str) -> None:
    """Register the one option ``name`` on a plain argparse ``parser`` (a command that takes few of them)."""
    f = next(f for f in _options() if f.name == name)
    parser.add_argument(v.flag(name), dest=name, type=f.metadata["type"], default=f.metadata["raw"],
                        help=f.metadata["help"])  # fmt: skip


def to_argv(options: argparse.Namespace) -> list[str]:
    """The loadgen options that differ from their defaults, as flags for a Locust command line.

    The token is left out on purpose: it travels in the environment, never in argv (visible in ``ps``).
    """
    argv: list[str] = []
    for f in _options():
        default = f.metadata["raw"]
        value = getattr(options, f.name, default)
        if f.metadata["secret"] or value == default:
            continue
        argv += [v.flag(f.name)] if isinstance(default, bool) else [v.flag(f.name), str(value)]
    return argv
