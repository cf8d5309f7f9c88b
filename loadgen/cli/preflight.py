"""Checks before anything starts: what Locust or the Milvus server would refuse, refused by loadgen first.

``loadgen run``/``sweep``/``compare``/``ui`` call these before an embedded server is started, a collection touched
or a results directory written; each problem is one ``LoadgenError`` line (exit 2). Three kinds:

- values Locust parses itself (``--run-time``, ``--processes``, user class names, the locustfile's name): checked
  with Locust's own parser where it has one, loaded from its file (importing ``locust`` would monkey-patch this
  process, which never imports gevent);
- values the server bounds (``--dim``, ``--top-k``, the collection name's length): the
  documented limits of the version the server reports (for an embedded server, of the installed ``milvus`` wheel,
  known before it is started); checked against Milvus 2.3.5 by tests/test_bad_input.py;
- paths: an ``--out`` or an output file that cannot be written, an input file that is missing, unreadable or of
  another dimension (``path_options``), found without leaving anything behind.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

from loadgen.config import paths
from loadgen.config.settings import Settings
from loadgen.config.values import flag
from loadgen.errors import LoadgenError
from loadgen.milvus import capabilities

MILVUS_2_LIMITS = capabilities.MILVUS_2_LIMITS
limits_for = capabilities.limits_for
server_limits = capabilities.server_limits


# ---- Locust's own parsers ---------------------------------------------------------------------------------------
@cache
def _locust_module(relative: str) -> ModuleType:
    """A module file of the installed Locust, loaded on its own: the ``locust`` package is never imported."""
    spec = importlib.util.find_spec("locust")
    if spec is None or not spec.submodule_search_locations:
        raise LoadgenError("locust is not installed; run `pip install -e .`")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    mod_spec = importlib.util.spec_from_file_location(f"_loadgen_locust_{path.stem}", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def run_time(text: str) -> int:
    """``--run-time`` as Locust reads it (``locust.util.timespan.parse_timespan``), at least one second (0 would
    mean no limit at all: a run that never ends)."""
    try:
        seconds = int(_locust_module("util/timespan.py").parse_timespan(text))
    except ValueError:
        raise LoadgenError(f"--run-time {text!r}: expected e.g. 20s, 5m, 1h30m or a number of seconds") from None
    if seconds < 1:
        raise LoadgenError(f"--run-time {text!r}: must be at least 1 second")
    return seconds


def processes(value: int) -> None:
    if value < 0:
        raise LoadgenError(f"--processes must be 0 (one process) or a number of worker processes, got {value}")


def locustfile_classes(path: Path) -> set[str] | None:
    """Names a locustfile binds at its top level (classes, imports, ``__all__``), or None if it cannot be told
    without running it (a star import, a syntax error: Locust reports those itself)."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def user_classes(path: Path, classes: list[str]) -> None:
    known = locustfile_classes(path) if classes else None
    if known is None:
        return
    missing = [c for c in classes if c not in known]
    if missing:
        users = sorted(n for n in known if n.endswith("User") and n[0].isupper())
        raise LoadgenError(
            f"user class {missing[0]!r} is not in {path.name}; choose from {', '.join(users) or 'its User classes'}"
        )


def locustfile_name(path: Path) -> None:
    if path.suffix != ".py":  # Locust: "Could not find any locustfile! Ensure file ends in '.py'"
        raise LoadgenError(f"locustfile {path}: Locust only loads .py files")


# ---- paths ------------------------------------------------------------------------------------------------------
# options that name a file loadgen writes, and the folders it writes into
OUTPUT_FILES = ("latency_file", "recall_file", "retrieval_file", "open_loop_file", "flows_file", "workers_file",
                "server_metrics_file", "generator_file")  # fmt: skip
OUTPUT_DIRS = ("results_dir", "groundtruth_cache")


def path_options(args: argparse.Namespace, settings: Settings) -> None:
    """Every path among a command's options: the output folder (``--out``), the files and folders the run writes,
    and the files it reads (``--dataset`` and its ``--queries``/``--neighbors``, ``--corpus``; the TLS files are
    checked with the settings, and URIs where options become settings: ``loadgen.config.values``)."""
    from loadgen.workload import corpus, truth

    out = getattr(args, "out", None)
    if out is not None:
        paths.writable_dir(Path(out))
    for name in OUTPUT_DIRS:
        if getattr(settings, name):
            paths.writable_dir(Path(getattr(settings, name)), flag(name))
    for name in OUTPUT_FILES:
        if getattr(settings, name):
            paths.writable_file(Path(getattr(settings, name)), flag(name))
    for name in ("queries", "neighbors"):  # a synthetic --dataset does not open them
        value = getattr(settings, name)
        if value and not Path(value).expanduser().is_file():
            raise LoadgenError(f"{flag(name)} {value}: no such file")
    if settings.dataset:
        truth.open_for(settings)  # a missing, corrupt or other-dimension file (its vectors are not read yet)
    corpus.corpus_path(settings.corpus)


# ---- what the server bounds -------------------------------------------------------------------------------------
def embedded_version(engine: str) -> str:
    """The version an embedded server will report, known before it starts: the installed ``milvus`` wheel's."""
    if engine != "milvus":
        return ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("milvus")
    except PackageNotFoundError:
        return ""


def host_version(settings: Settings) -> str:
    """Ask the server (read-only: a connection and its version, nothing else)."""
    from loadgen.milvus import collection

    client = collection.connect(settings)
    try:
        return str(client.get_server_version(timeout=settings.timeout))
    except Exception as exc:  # a server that answers the handshake but not this: the later checks say why
        where, why = collection.redact_uri(settings.uri), collection.server_message(exc)
        raise LoadgenError(f"Milvus at {where} did not tell its version: {why}") from None
    finally:
        client.close()


# ---- entry points -----------------------------------------------------------------------------------------------
def check_run(args: argparse.Namespace, settings: Settings, locustfile: Path | None, out: Path | None) -> None:
    """Everything ``run``/``sweep``/``compare``/``ui`` can check before a server, a collection or a file is touched."""
    if getattr(args, "run_time", None) is not None:
        seconds = run_time(args.run_time)
        warm = getattr(settings, "warmup", 0.0)
        if warm and warm >= seconds and getattr(args, "command", "") != "capacity":  # capacity adds it to each step
            raise LoadgenError(
                f"--warmup {warm:g}s is not shorter than --run-time {args.run_time}: nothing would be measured"
            )
    processes(getattr(args, "processes", 0) or 0)
    if locustfile is not None:
        locustfile_name(locustfile)
        user_classes(locustfile, list(getattr(args, "classes", []) or []))
        request_shape(locustfile, list(getattr(args, "classes", []) or []), settings)
    if out is not None:
        paths.writable_dir(out)
    version = host_version(settings) if args.host else embedded_version(getattr(args, "engine", "milvus"))
    server_limits(settings, version)


# loadgen's user modules and the client layer their users drive (read off a locustfile's imports, without importing)
_USER_MODULES = {"pymilvus": ("pymilvus",), "langchain": ("langchain",), "llamaindex": ("llamaindex",),
                 "retrieval": ("retrieval",), "hybrid": ("langchain-hybrid", "llamaindex-hybrid")}  # fmt: skip


def locustfile_layers(path: Path) -> list[str]:
    """The client layers whose users a locustfile imports from ``loadgen.users``."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadgen.users."):
            layers = _USER_MODULES.get(node.module.rsplit(".", 1)[1], ()) if node.module else ()
            found += [layer for layer in layers if layer not in found]
    return found


# the user modules whose users' search takes --nq and --output-fields (their adapters' ``request_shape``)
_SHAPED_MODULES = frozenset({"pymilvus", "fastpath", "custom"})  # custom: your own calls (query_vectors())


def request_shape(path: Path, classes: list[str], settings: Settings) -> None:
    """``--nq`` above 1 or another ``--output-fields`` than ids, for a run of a user class whose library searches one
    query per call (read off the locustfile's imports from ``loadgen.users``: the classes named, else all of them):
    refused before a server starts, in the line Locust's start checks give (``clients.shape.check_layer``)."""
    from loadgen.clients import shape

    if not shape.asks_shape(settings):
        return
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadgen.users.")):
            continue
        module = str(node.module).rsplit(".", 1)[1]
        for alias in node.names:
            name = alias.asname or alias.name
            if name.endswith("User") and (not classes or name in classes) and module not in _SHAPED_MODULES:
                shape.check_layer(name, _USER_MODULES.get(module, (module,))[0], False, settings)


def server_capabilities(path: Path, settings: Settings, version: str) -> None:
    """Every operation the run will call, and every layer's own needs, are served by this server: else one line,
    before Locust starts (``clients.check_server``)."""
    from loadgen import clients
    from loadgen.milvus.collection import redact_uri

    for layer in locustfile_layers(path):
        clients.check_server(layer, settings.weights, version, redact_uri(settings.uri))
