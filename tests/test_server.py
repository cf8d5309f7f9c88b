"""The embedded Milvus: free ports beside another instance, readiness deadline, clean stop, CLI, call timeouts."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from pymilvus import MilvusClient

from loadgen.errors import ServerError
from loadgen.milvus.server import EmbeddedMilvus, ServerInfo, _group_members

pytestmark = pytest.mark.milvus


def test_second_server_beside_the_first_then_clean_stop(milvus: ServerInfo, tmp_path: Path) -> None:
    server = EmbeddedMilvus(tmp_path / "second", die_with_parent=True)
    info = server.start()
    try:
        assert info.port != milvus.port and info.health_port != milvus.health_port
        c = MilvusClient(uri=info.uri, timeout=10)
        assert c.get_server_version().startswith("v2.3")
        c.close()
        assert json.loads((tmp_path / "second" / "loadgen-server.json").read_text())["pid"] == info.pid
    finally:
        assert server.stop() is True
    assert _group_members(info.pid) == []  # no orphan left in its process group
    assert not (tmp_path / "second" / "loadgen-server.json").exists()
    # the session server is untouched
    c = MilvusClient(uri=milvus.uri, timeout=10)
    assert c.get_server_version().startswith("v2.3")
    c.close()


def test_readiness_deadline_gives_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    server = EmbeddedMilvus(tmp_path / "slow", startup_timeout=0.5, die_with_parent=True)
    with pytest.raises(ServerError, match=r"not healthy within 0 s|not healthy within 1 s") as err:
        server.start()
    assert "milvus-stdout.log" in str(err.value)
    assert server.status() is None


def test_cli_server_start_status_stop(tmp_path: Path) -> None:
    data = str(tmp_path / "cli")
    started = run_cli("server", "start", "--data-dir", data)
    assert started.returncode == 0, started.stderr
    uri = started.stdout.strip()
    assert uri.startswith("http://127.0.0.1:") and "logs:" in started.stderr
    status = run_cli("server", "status", "--data-dir", data, "--uri")
    assert status.returncode == 0 and status.stdout.strip() == uri
    pid = json.loads(run_cli("server", "status", "--data-dir", data).stdout)["pid"]
    again = run_cli("server", "start", "--data-dir", data)
    assert again.returncode == 2 and "already runs" in again.stderr
    assert run_cli("server", "stop", "--data-dir", data).stdout.strip() == "stopped"
    assert _group_members(pid) == []
    assert run_cli("server", "status", "--data-dir", data).returncode == 1


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: the worst kind of stuck server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join()
    for s in held:
        s.close()
    sock.close()


def test_silent_server_fails_after_timeout_with_clear_message(silent_server: int) -> None:
    start = time.monotonic()
    proc = run_cli("run", "--host", f"http://127.0.0.1:{silent_server}", "--timeout", "2", "-t", "5s", timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("loadgen: error: cannot reach Milvus at http://127.0.0.1:")
    assert "within 2 s" in lines[-1] and "Traceback" not in proc.stderr
    assert elapsed < 30


def test_calls_to_a_frozen_server_time_out(tmp_path: Path) -> None:
    """SIGSTOP a live server: sync and async calls fail after --timeout instead of hanging."""
    server = EmbeddedMilvus(tmp_path / "frozen", die_with_parent=True)
    info = server.start()
    try:
        c = MilvusClient(uri=info.uri, timeout=10)
        c.create_collection("frozen_check", dimension=4, consistency_level="Bounded")
        c.close()
        script = Path(__file__).parent / "scripts" / "frozen_calls.py"
        env = {**os.environ, "URI": info.uri}
        import subprocess
        import sys

        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connected"
        os.killpg(info.pid, signal.SIGSTOP)
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            os.killpg(info.pid, signal.SIGCONT)
        result = json.loads(out.strip().splitlines()[-1])
        for flavour in ("sync", "async"):
            assert result[flavour]["error"], result
            assert 0.9 < result[flavour]["elapsed_s"] < 5.0, result
    finally:
        server.stop()


def test_a_port_taken_before_the_server_binds_it_starts_it_on_other_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ports are free when drawn, but a process starting beside (another worker's server) can bind one first: the
    server exits saying "address already in use", and the start tries again on ports drawn anew (seen in a CI run
    on four workers: every test of one worker failed with its session server)."""
    from loadgen.milvus import server

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    drawn: list[list[int]] = []
    real = server.free_ports

    def first_draw_taken(count: int, avoid: object = ()) -> list[int]:
        ports = real(count, avoid)  # type: ignore[arg-type]
        if not drawn:  # the first draw: etcd's peer port (the last) is one another process holds, which the
            ports = [*ports[:-1], taken]  # wheel's own check of the other ports does not see: Milvus fails to bind it
        drawn.append(ports)
        return ports

    monkeypatch.setattr(server, "free_ports", first_draw_taken)
    s = EmbeddedMilvus(tmp_path / "m", die_with_parent=True)
    try:
        info = s.start()
        assert len(drawn) == 2 and info.port != taken
        c = MilvusClient(uri=info.uri, timeout=10)
        assert c.list_collections() == []
        c.close()
        log = (tmp_path / "m" / "logs" / "milvus-stdout.log").read_text(errors="replace")
        assert "address already in use" in log  # the first start did fail on the taken port
    finally:
        s.stop()
        holder.close()
