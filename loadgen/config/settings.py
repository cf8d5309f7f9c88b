"""loadgen's options, declared once, and the frozen settings object they become.

The same table feeds Locust's parser (``init_command_line_parser``: env vars, web UI, secrets masked) and the plain
argparse parser of ``loadgen run`` (which checks the settings before Locust starts). This module is the only one that
reads ``LOADGEN_*`` environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from loadgen.errors import LoadgenError

INDEX_TYPES = ("AUTOINDEX", "HNSW", "IVF_FLAT", "FLAT")
METRICS = ("COSINE", "L2", "IP")
CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")
# every operation of every client layer (the adapters' ``operations`` keys), plus the async fan-out task
OPERATIONS: dict[str, tuple[str, ...]] = {
    "pymilvus": ("insert", "upsert", "search", "query", "get", "delete"),
    "langchain": (
        "add_texts", "add_documents", "add_embeddings", "similarity_search", "similarity_search_by_vector",
        "similarity_search_with_score", "similarity_search_with_score_by_vector", "max_marginal_relevance_search",
        "max_marginal_relevance_search_by_vector", "delete", "delete_expr", "upsert", "search_by_metadata",
        "get_pks", "from_texts",
    ),
    "llamaindex": (
        "add", "query", "query_filtered", "delete", "delete_nodes", "get_nodes", "from_documents", "retrieve",
    ),
}  # fmt: skip
KNOWN_TASKS = frozenset(op for ops in OPERATIONS.values() for op in ops) | {"fanout"}

CATEGORY_COUNT = 100  # loadgen.workload.rows.CATEGORIES: rows' category is uniform over 0..99
SECRET_FIELDS = ("milvus_token", "openai_api_key")

# dest, default, type, help, extra (choices, secret, flag)
_OPTIONS: list[tuple[str, Any, Any, str, dict[str, Any]]] = [
    ("milvus_token", "", str, "Milvus token (user:password or API key); prefer the env var", {"secret": True}),
    ("collection", "loadgen_bench", str, "collection to create (or reuse if loadgen created it)", {}),
    ("dim", 128, int, "vector dimension", {}),
    (
        "rows",
        10_000,
        int,
        "rows inserted once per test run before users start; with --dataset: at most this many of its base vectors "
        "(0: all of them)",
        {},
    ),
    ("index_type", "AUTOINDEX", str, "vector index", {"choices": INDEX_TYPES}),
    ("metric_type", "COSINE", str, "distance metric", {"choices": METRICS}),
    ("index_params", "", str, 'index build params as JSON, e.g. {"M": 16, "efConstruction": 200}', {}),
    ("search_params", "", str, 'search params as JSON, e.g. {"ef": 64} or {"nprobe": 16}', {}),
    ("top_k", 10, int, "hits per search", {}),
    ("filter", "", str, 'filter expression for search and query, e.g. "category < 10"', {}),
    (
        "filter_selectivity",
        "",
        str,
        "share of rows searches and queries keep, 0 < s <= 1: the filter category < round(100*s) (not with --filter)",
        {},
    ),
    (
        "dataset",
        "",
        str,
        "pymilvus layer: insert this dataset's base vectors and measure recall: synthetic:uniform, "
        "synthetic:clustered[:K], a .npy/.fvecs/.bvecs/.hdf5 file or a VectorDBBench parquet dir",
        {},
    ),
    ("queries", "", str, "query vectors for --dataset (.npy/.fvecs/.bvecs); default: the dataset's own", {}),
    ("neighbors", "", str, "true neighbor ids of --queries (.ivecs/.npy); default: computed exactly", {}),
    (
        "groundtruth_cache",
        "",
        str,
        "directory caching computed ground truth (default ~/.cache/milvus-loadgen/groundtruth)",
        {"ui": False},
    ),
    ("consistency_level", "Bounded", str, "consistency level of searches and queries", {"choices": CONSISTENCY_LEVELS}),
    ("batch_size", 10, int, "rows per insert/upsert/delete call; ids per get", {}),
    ("fanout", 10, int, "concurrent calls gathered by the async fanout task", {}),
    ("weights", "", str, "task weights op=w,... by operation name (0 disables; unnamed ops of a named layer: 0)", {}),
    ("timeout", 10.0, float, "seconds before any single Milvus call fails", {}),
    (
        "arrival_rate",
        0.0,
        float,
        "open model: total requests per second across all users and workers, sent on schedule whatever the latency "
        "(latency counted from the intended send time); 0: closed model (each user waits for its answer)",
        {},
    ),
    (
        "arrival_process",
        "uniform",
        str,
        "open model schedule: evenly spaced sends, or poisson (independent arrivals)",
        {"choices": ("uniform", "poisson")},
    ),
    ("max_in_flight", 100, int, "open model and streams: outstanding requests per user before sends are dropped", {}),
    (
        "stream_rates",
        "",
        str,
        "fixed-rate background operations next to the workload, total calls/s: e.g. insert=20 or upsert=10,delete=10",
        {},
    ),
    (
        "embedding",
        "fake",
        str,
        "text embeddings for LangChain/LlamaIndex: fake (offline), local, openai",
        {"choices": ("fake", "local", "openai")},
    ),
    ("embedding_model", "", str, "model name for --embedding openai (default text-embedding-3-small)", {}),
    ("seed", 42, int, "seed for generated vectors", {}),
    (
        "require_existing",
        False,
        bool,
        "use a collection that already exists (loadgen's, or a foreign one with --allow-foreign-collection); "
        "never create one",
        {},
    ),
    ("allow_foreign_collection", False, bool, "write into an existing collection loadgen did not create", {}),
    ("recreate", False, bool, "drop and recreate the collection if loadgen created it earlier", {}),
    ("keep_data", False, bool, "keep the collection loadgen created when the test ends", {}),
    ("tls_ca_file", "", str, "CA certificate (PEM) that signed the server's certificate; needs an https:// host", {}),
    ("tls_server_name", "", str, "name to verify the server's certificate against (default: the host)", {}),
    ("tls_client_cert", "", str, "client certificate (PEM) for mutual TLS; with --tls-client-key", {}),
    ("tls_client_key", "", str, "client private key (PEM) for mutual TLS; with --tls-client-cert", {}),
    (
        "master_timeout",
        60.0,
        float,
        "a worker quits when it has not heard from the master for this many seconds (Locust's 60 by default)",
        {"ui": False},
    ),
    (
        "latency_file",
        "",
        str,
        "write microsecond latency percentiles (HDR, merged from workers) to this JSON",
        {"ui": False},
    ),
    ("recall_file", "", str, "write recall statistics (merged from workers) to this JSON", {"ui": False}),
    ("open_loop_file", "", str, "write open-model send counts (merged from workers) to this JSON", {"ui": False}),
    ("workers_file", "", str, "master: write the workers seen and those that went missing to this JSON", {"ui": False}),
]


def _env_name(dest: str) -> str:
    return "LOADGEN_" + dest.upper()


def add_options(parser: Any, *, locust: bool) -> None:
    """Register every option on ``parser`` (Locust's configargparse parser, or a plain argparse one)."""
    # Locust's include_in_web_ui/is_secret only work on the parser itself, not on an argument group
    group = parser if locust else parser.add_argument_group("loadgen", "workload options (env LOADGEN_<NAME>)")
    for dest, default, typ, help_text, extra in _OPTIONS:
        flag = "--" + dest.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": dest, "help": help_text}
        env = _env_name(dest)
        if locust and extra.get("secret"):
            # no env_var here: Locust would put the env value into the web UI page as the field's default.
            # Settings.from_options reads the env var itself; the form shows an empty, masked field.
            kwargs.update(include_in_web_ui=True, is_secret=True)
        elif locust:
            kwargs.update(env_var=env, include_in_web_ui=extra.get("ui", True))
        elif env in os.environ:  # plain argparse has no env_var support
            raw = os.environ[env]
            default = raw.lower() in ("1", "true", "yes") if typ is bool else raw  # noqa: PLW2901
        if typ is bool:
            kwargs.update(action="store_true", default=default)
        else:
            kwargs.update(type=typ, default=default)
            if "choices" in extra:
                kwargs["choices"] = extra["choices"]
        group.add_argument(flag, **kwargs)


def _json_object(name: str, text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LoadgenError(f"--{name.replace('_', '-')} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LoadgenError(f"--{name.replace('_', '-')} must be a JSON object, got {text!r}")
    return value


def _selectivity(text: str) -> float:
    """``--filter-selectivity``: "" means none; else a share of rows in (0, 1]."""
    if not text.strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise LoadgenError(f"--filter-selectivity {text!r} is not a number; expected 0 < s <= 1") from None
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise LoadgenError(f"--filter-selectivity must be in (0, 1], got {text}")
    if round(value * CATEGORY_COUNT) < 1:
        raise LoadgenError(f"--filter-selectivity {text} keeps no category; the smallest is {1 / CATEGORY_COUNT}")
    return value


def selectivity_filter(selectivity: float) -> str:
    """The filter a selectivity stands for: categories are uniform over 0..99."""
    return f"category < {round(selectivity * CATEGORY_COUNT)}"


def positive_ints(text: str, option: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``, for list options such as ``--counts`` and ``--sweep-users``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise LoadgenError(f"{option} {text!r}: expected comma-separated positive integers")
    return values


def _weights(text: str) -> dict[str, int]:
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = (x.strip() for x in part.partition("="))
        if name not in KNOWN_TASKS:
            raise LoadgenError(f"--weights: unknown task {name!r}; tasks are {', '.join(sorted(KNOWN_TASKS))}")
        try:
            weights[name] = int(value)
        except ValueError:
            raise LoadgenError(f"--weights: {part!r} is not name=<integer>") from None
        if weights[name] < 0:
            raise LoadgenError(f"--weights: {part!r} is negative")
    if weights and not any(weights.values()):
        raise LoadgenError("--weights: every task has weight 0; give at least one a positive weight")
    return weights


def layer_weights(weights: dict[str, int], defaults: dict[str, int], fanout: bool) -> dict[str, int]:
    """The weights one user class runs with: its defaults, unless ``--weights`` names any of its tasks, in which
    case the named ones get their weight and the others 0. ``fanout`` adds the async fan-out task (default 1)."""
    own = {**defaults, **({"fanout": 1} if fanout else {})}
    if not any(name in weights for name in own):
        return own
    return {name: weights.get(name, 0) for name in own}


@dataclass(frozen=True)
class Settings:
    """Everything a user, adapter or setup step needs; built once from parsed options."""

    uri: str
    milvus_token: str = field(default="", repr=False)
    collection: str = "loadgen_bench"
    dim: int = 128
    rows: int = 10_000
    index_type: str = "AUTOINDEX"
    metric_type: str = "COSINE"
    index_params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)
    top_k: int = 10
    filter: str = ""
    consistency_level: str = "Bounded"
    batch_size: int = 10
    fanout: int = 10
    weights: dict[str, int] = field(default_factory=dict)  # only the tasks --weights names
    timeout: float = 10.0
    arrival_rate: float = 0.0  # 0: closed model
    arrival_process: str = "uniform"
    max_in_flight: int = 100
    stream_rates: dict[str, float] = field(default_factory=dict)
    total_users: int = 0  # users in the whole test, set by the master at test start (splits the rates)
    embedding: str = "fake"
    embedding_model: str = ""
    openai_api_key: str = field(default="", repr=False)  # from OPENAI_API_KEY only
    seed: int = 42
    require_existing: bool = False
    allow_foreign_collection: bool = False
    recreate: bool = False
    keep_data: bool = False
    latency_file: str = ""
    filter_selectivity: float = 0.0  # 0: none; else ``filter`` holds the category filter it stands for
    dataset: str = ""
    queries: str = ""
    neighbors: str = ""
    groundtruth_cache: str = ""
    recall_file: str = ""
    open_loop_file: str = ""
    tls_ca_file: str = ""
    tls_server_name: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = ""
    master_timeout: float = 60.0
    workers_file: str = ""

    @classmethod
    def from_options(cls, options: argparse.Namespace, host: str | None, token: str = "") -> Settings:
        """``token``: one taken off the command line earlier (see hooks); else the option, else the env var."""
        if not host:
            raise LoadgenError(
                "no Milvus host: pass --host http://HOST:19530, or use `loadgen run` to start an embedded Milvus"
            )
        values = {f.name: getattr(options, f.name) for f in fields(cls) if hasattr(options, f.name)}
        values["index_params"] = _json_object("index_params", values.get("index_params", ""))
        values["search_params"] = _json_object("search_params", values.get("search_params", ""))
        values["weights"] = _weights(values.get("weights", ""))
        from loadgen.workload.arrival_rate import parse_rate, parse_stream_rates

        values["arrival_rate"] = parse_rate(values.get("arrival_rate", 0.0), "--arrival-rate")
        values["stream_rates"] = parse_stream_rates(values.get("stream_rates", "") or "", KNOWN_TASKS - {"fanout"})
        selectivity = _selectivity(str(values.get("filter_selectivity", "") or ""))
        values["filter_selectivity"] = selectivity
        if selectivity:
            if values.get("filter"):
                raise LoadgenError("--filter and --filter-selectivity exclude each other: pass one of them")
            values["filter"] = selectivity_filter(selectivity)
        values["milvus_token"] = values.get("milvus_token") or token or os.environ.get(_env_name("milvus_token"), "")
        values["openai_api_key"] = os.environ.get("OPENAI_API_KEY", "")
        settings = cls(uri=normalize_uri(host), **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for name in ("dim", "batch_size", "top_k", "fanout", "max_in_flight"):
            if getattr(self, name) < 1:
                raise LoadgenError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.rows < 0:
            raise LoadgenError(f"--rows must be 0 or more, got {self.rows}")
        if self.timeout <= 0:
            raise LoadgenError(f"--timeout must be positive, got {self.timeout}")
        if not self.collection.replace("_", "a").isalnum() or self.collection[0].isdigit():
            raise LoadgenError(f"--collection {self.collection!r}: use letters, digits and underscores")
        if self.master_timeout <= 0:
            raise LoadgenError(f"--master-timeout must be positive, got {self.master_timeout}")
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

    def public(self) -> dict[str, Any]:
        """Settings safe to write into results and logs: the token is never included."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECRET_FIELDS}
        out["token_set"] = bool(self.milvus_token)
        return out


def normalize_uri(host: str) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme = host.split("://", 1)[0]
    if scheme not in ("http", "https", "tcp", "grpc", "unix"):
        raise LoadgenError(f"--host {host!r}: expected http://HOST:PORT or https://HOST:PORT")
    return host


def to_argv(options: argparse.Namespace) -> list[str]:
    """The loadgen options that differ from their defaults, as flags for a Locust command line.

    The token is left out on purpose: it travels in the environment, never in argv (visible in ``ps``).
    """
    argv: list[str] = []
    for dest, default, typ, _help, _extra in _OPTIONS:
        value = getattr(options, dest, default)
        if dest == "milvus_token" or value == default:
            continue
        flag = "--" + dest.replace("_", "-")
        argv += [flag] if typ is bool else [flag, str(value)]
    return argv
