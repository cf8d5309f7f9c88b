"""Shared fixtures: one real embedded Milvus for the session, and helpers to run loadgen and read server metrics."""

from __future__ import annotations

import contextlib
import json
import os

# A test that imports locust in-process (a listener's unit test) must not have it monkey-patch this process after
# ssl was imported (a RecursionError in ssl, which made such tests depend on the order they ran in). Locust runs of
# the tests are child processes that set this themselves.
os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from certs import Pki, make_pki
from pymilvus import MilvusClient

from loadgen.config.settings import NO_SERVER_ENV
from loadgen.milvus.server import EmbeddedMilvus, ServerInfo, free_ports

ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background by a shell without job control inherits SIGINT *ignored*, and every `loadgen`
# it starts would ignore it too: the tests that press Ctrl-C on a run (test_lifecycle, test_signals) then waited out
# the whole run (seen in a fresh-clone run started that way). An ignored signal is inherited across exec, a handled
# one is reset to the default: so this process handles it, as an interactive Python does.
signal.signal(signal.SIGINT, signal.default_int_handler)


CHROMIUM = "/usr/bin/chromium"  # Debian's (`make browser`); Playwright drives it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


# Fixtures that are (or start) a Milvus server. A test that uses one, directly or through a fixture of its own, is
# marked `milvus` below; one that starts a server some other way (`loadgen run` without --host, its own
# EmbeddedMilvus) carries the mark itself. Every other test runs with LOADGEN_NO_SERVER set, so a server it would
# start fails at once (loadgen.milvus.server) instead of quietly running in `make test-fast`'s no-server tier.
SERVER_FIXTURES = frozenset({"milvus", "secure_milvus"})


# The files that take longest, longest first (seconds of one worker each, `--durations=0` of a full run on this
# 2-core machine). `make test` runs with `--dist loadfile --no-loadscope-reorder`: a worker that finishes a file takes
# the next in this order, so the long files start first and the short ones fill the gaps at the end, instead of a
# long file starting last and running alone. A file not listed keeps its collection order, after these.
LONGEST_FIRST = (
    "test_custom_users.py", "test_bad_input.py", "test_faults.py", "test_data_safety.py", "test_signals.py",
    "test_run.py", "test_coldwarm.py", "test_capacity_sweep.py", "test_open_model.py", "test_compare.py",
    "test_lifecycle.py", "test_k8s_local.py", "test_webui_form.py", "test_webui.py", "test_drivers.py",
    "test_request_shape.py", "test_framework_recall.py", "test_otel.py", "test_ingest.py", "test_langchain.py",
    "test_capacity.py", "test_index_and_truth.py", "test_recall.py", "test_server.py", "test_warmup.py",
    "test_security.py", "test_warmup_server.py", "test_webui_charts.py", "test_report_e2e.py",
)  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.milvus)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order


@pytest.fixture(autouse=True)
def _no_server_outside_the_milvus_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("milvus") is None:
        monkeypatch.setenv(NO_SERVER_ENV, "1")  # inherited by the loadgen and Locust processes the test starts


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium (a playwright ``Browser``), closed after the test."""
    from playwright.sync_api import sync_playwright  # only the browser tests pay for the import

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make browser`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# The session server's coordinators poll sooner than Milvus's defaults: a segment's insert allocations expire after
# 0.2 s instead of 2 s (a flush waits for them: 3 s -> 1 s a collection) and the query coordinator looks at its
# nodes every 0.2 s instead of every 1 s (a release or a load answers sooner). Nothing a test asserts depends on
# these timers; the servers a test starts itself (faults, lifecycle, `loadgen run` without --host) keep the defaults.
QUICK_TIMERS = {
    "dataCoord.segment.assignmentExpiration": 200,
    "queryCoord.checkInterval": 200,
    "queryCoord.distPullInterval": 100,
}


@pytest.fixture(scope="session")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    server = EmbeddedMilvus(tmp_path_factory.mktemp("milvus"), die_with_parent=True, config=QUICK_TIMERS)
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture
def client(milvus: ServerInfo) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=milvus.uri, timeout=10)
    yield c
    c.close()


def stop_thawed(server: EmbeddedMilvus) -> None:
    """Stop a server a test may have frozen (SIGSTOP): thaw it first so it can shut down, whatever happened."""
    info = server.info or server.read_state()
    if info is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGCONT)
    server.stop()


def run_cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``loadgen ARGS`` in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "loadgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def master_port() -> list[str]:
    """Flags for a Locust master of its own port: with `--processes`, plain Locust binds 5557, which another run on
    the machine (a parallel test, another checkout's suite) may hold."""
    (port,) = free_ports(1)
    return ["--master-bind-port", str(port), "--master-port", str(port)]


def run_script(name: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    """``tests/scripts/NAME`` in a process of its own (it sets up gevent and Locust its own way): it must exit 0, and
    its last line of output is the JSON it measured."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def server_counter(info: ServerInfo, function: str, status: str = "success") -> int:
    """milvus_proxy_req_count{function_name=...,status=...} from the server's Prometheus endpoint."""
    text = urllib.request.urlopen(info.metrics_url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        labels_match = f'function_name="{function}"' in line and f'status="{status}"' in line
        if line.startswith("milvus_proxy_req_count{") and labels_match:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def snapshot(client: MilvusClient) -> dict[str, tuple[str, int]]:
    """Every collection with its description and row count: what 'nothing touched' compares."""
    out = {}
    for name in client.list_collections():
        desc = client.describe_collection(name)
        client.load_collection(name)
        rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        out[name] = (desc.get("description", ""), int(rows[0]["count(*)"]))
    return out


@dataclass(frozen=True)
class Secure:
    """An embedded Milvus with authentication and TLS on, root's password a random one (the secret to hunt for)."""

    info: ServerInfo
    uri: str  # https://127.0.0.1:PORT
    token: str  # root:<random>
    pki: Pki


@pytest.fixture(scope="session")
def secure_milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    """Milvus 2.3.5 with common.security.authorizationEnabled and tlsMode 1 (server-side TLS), certificates from a
    CA made for this session. Started only by the tests that ask for it."""
    base = tmp_path_factory.mktemp("secure")
    pki = make_pki(base / "pki")
    config = {
        **QUICK_TIMERS,
        "authorization_enabled": True,
        "tls_mode": 1,
        "server_pem_path": str(pki.server_cert),
        "server_key_path": str(pki.server_key),
        "ca_pem_path": str(pki.ca),
    }
    server = EmbeddedMilvus(base / "milvus", die_with_parent=True, config=config)
    info = server.start()
    try:
        uri = info.uri.replace("http://", "https://")
        password = "Lg-" + secrets.token_hex(12)
        c = MilvusClient(uri=uri, token="root:Milvus", timeout=10, server_pem_path=str(pki.ca), alias="secure-setup")
        c.update_password("root", "Milvus", password)
        c.close()
        yield Secure(info, uri, f"root:{password}", pki)
    finally:
        server.stop()


def secure_client(secure: Secure) -> MilvusClient:
    return MilvusClient(
        uri=secure.uri, token=secure.token, timeout=10, server_pem_path=str(secure.pki.ca), alias="secure-check"
    )
