"""What a test start is refused for, found before anything is created: one ``LoadgenError`` line each.

``check`` runs the same checks wherever a test starts: a headless run asks at Locust's ``init`` (``loadgen run`` has
asked the server already, in its own process, before Locust started), and the web UI's start form asks before it
starts anything (``loadgen.web.start``), for the user classes picked in the form:

- the options (parsed by ``Settings.from_options``, the same code as the command line's flags) and the task names
  of ``--weights`` and ``--stream-rates``, and the embedding backend;
- the classes: each higher layer registers what it checks of the classes a test will run (``class_checks``; the
  store users: their ``--weights`` leave each of them something to do and name only their tasks);
- with ``server``: what the server says, read-only: its version's limits, the operations each picked layer will call,
  and each layer's collection (ownership, schema, dimension, filter, dataset), as ``prepare`` would find them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loadgen import clients as adapters
from loadgen.config.settings import Settings
from loadgen.errors import LoadgenError
from loadgen.milvus import capabilities, collection
from loadgen.runtime import off_hub
from loadgen.workload.embeddings import check_backend

# (environment, the classes the test will run, settings) -> None, raising LoadgenError: registered by higher layers
class_checks: list[Callable[[Any, Sequence[type], Settings], None]] = []


def layers_of(classes: Sequence[type]) -> list[str]:
    """The collections' layers the classes need prepared."""
    return sorted({layer for cls in classes if (layer := getattr(cls, "layer", None))})


def check(environment: Any, classes: Sequence[type], settings: Settings, *, server: bool) -> None:
    adapters.check_task_names(settings.weights, settings.stream_rates)
    check_backend(settings)
    for check_classes in class_checks:
        check_classes(environment, classes, settings)
    if server:
        # a sync client may wait for its channel on a real lock: on a thread of its own, the page keeps answering
        off_hub(_server, settings, layers_of(classes))


def _server(settings: Settings, layers: list[str]) -> None:
    where = collection.redact_uri(settings.uri)
    client = collection.connect(settings)
    try:
        version = str(client.get_server_version(timeout=settings.timeout))
    except Exception as exc:  # a server that answers the handshake but not this
        raise LoadgenError(f"Milvus at {where} did not tell its version: {collection.server_message(exc)}") from None
    finally:
        client.close()
    capabilities.server_limits(settings, version)
    for layer in layers:
        adapters.check_server(layer, settings.weights, version, where)
        adapters.adapter(layer).check(settings)
