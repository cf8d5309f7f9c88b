"""The embedded Milvus: a real Milvus standalone (the ``milvus`` wheel) that loadgen starts itself.

Why not ``milvus-server`` or ``milvus.MilvusServer.start()``: the wrapper leaves its ``milvus run standalone``
child behind on SIGTERM and picks its health port without telling us. We use the wheel's own config renderer,
then start the engine in its own process group on ports we chose, so one ``killpg`` stops everything.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadgen.config.settings import NO_SERVER_ENV, embedded_server_refused
from loadgen.errors import ServerError

STATE_FILE = "loadgen-server.json"
ENGINES = ("milvus", "lite")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerInfo:
    """What a running embedded server is: written to ``<data_dir>/loadgen-server.json``."""

    engine: str
    pid: int
    data_dir: str
    port: int
    health_port: int  # 0 for milvus-lite, which has no HTTP health endpoint
    log_dir: str

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/metrics" if self.health_port else ""


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "milvus-loadgen" / "server"


PORT_ATTEMPTS = 3  # starts on fresh ports when one given to the server was taken before it bound it


class PortTaken(ServerError):
    """The server exited while starting because a port it was given was bound by another process meanwhile."""


def free_ports(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports free right now, for a server or web UI to bind a moment later.

    They are drawn at random below the kernel's ephemeral range (``ip_local_port_range``), never from it: the
    kernel gives ports of that range to every outgoing connection (Milvus alone opens a few dozen while it starts),
    and one of those could take a port chosen from there before its owner binds it ("Address already in use").
    ``avoid``: ports the caller will bind itself (a command's ``--web-port``), never handed out here."""
    skip = set(avoid)
    pool = [p for p in port_pool() if p not in skip]
    chosen: list[int] = []
    for port in random.SystemRandom().sample(pool, min(len(pool), 64 * count)):
        if _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise ServerError(f"could not find {count} free TCP ports in {pool[0]}-{pool[-1]}")


def port_pool() -> range:
    """Where ``free_ports`` draws from: the wider of the ranges just below and just above the ephemeral one."""
    low, high = _ephemeral_range()
    below, above = range(max(1024, low - 12768), low), range(high + 1, 65536)
    return max(below, above, key=len)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def _bindable(port: int) -> bool:
    """Nothing holds ``port`` on any IPv4 address (nor on IPv6, where the host has it); binds, never listens."""
    families = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if socket.has_ipv6 else [])
    for family, host in families:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 here
        with sock:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE or family == socket.AF_INET:
                    return False
    return True


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """For ``preexec_fn``: the kernel sends ``sig`` to the child when its parent dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _healthy(health_port: int, port: int) -> bool:
    if health_port:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as resp:
                if b"OK" not in resp.read():
                    return False
        except (urllib.error.URLError, OSError):
            return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _pin_embedded_etcd(base_dir: Path, client_port: int, peer_port: int) -> None:
    """Give the in-process etcd our ports. The wheel's template only sets the port Milvus *dials*; etcd itself
    would listen on its defaults (2379/2380) and crash when another Milvus already holds them."""
    etcd_cfg = base_dir / "configs" / "embed-etcd.yaml"
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    etcd_cfg.write_text(
        f"name: loadgen\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: loadgen={peer}\n"
    )
    milvus_yaml = base_dir / "configs" / "milvus.yaml"
    text = milvus_yaml.read_text()
    if "\netcd:\n" not in "\n" + text:
        raise ServerError(f"unexpected Milvus config layout in {milvus_yaml}: no top-level etcd section")
    text = ("\n" + text).replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_cfg}\n", 1)[1:]
    milvus_yaml.write_text(text)


class EmbeddedMilvus:
    """Start, probe and stop one embedded server rooted at ``data_dir``.

    ``die_with_parent`` ties the server's life to this process (used by ``loadgen run``); a server from
    ``loadgen server start`` outlives its command and is stopped with ``loadgen server stop``.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        engine: str = "milvus",
        startup_timeout: float = 120.0,
        die_with_parent: bool = False,
        config: dict[str, Any] | None = None,
        avoid_ports: Iterable[int] = (),
    ) -> None:
        if engine not in ENGINES:
            raise ServerError(f"unknown embedded engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.data_dir = Path(data_dir or default_data_dir()).resolve()
        self.engine = engine
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        # extra values for the wheel's milvus.yaml template, e.g. authorization_enabled, tls_mode, server_pem_path
        self.config = dict(config or {})
        self.avoid_ports = set(avoid_ports)  # what the command binds itself after the server starts (its web UI)
        self._proc: subprocess.Popen[bytes] | None = None
        self._launch: tuple[list[str], dict[str, str], int, int] | None = None  # kept for a restart
        self.info: ServerInfo | None = None

    # ---- state file -------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def read_state(self) -> ServerInfo | None:
        try:
            return ServerInfo(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def status(self) -> ServerInfo | None:
        """The running server of this data dir, or None (a stale state file is removed)."""
        info = self.read_state()
        if info is None:
            return None
        if not _group_members(info.pid):
            self.state_path.unlink(missing_ok=True)
            return None
        return info

    # ---- start ------------------------------------------------------------------------------------
    def start(self, *, same_ports: bool = False) -> ServerInfo:
        """Start the server; ``same_ports``: on the ports (and config) of this object's previous start, so clients
        of the old server reconnect to the new one (fault tests kill it and bring it back on the same data dir)."""
        if embedded_server_refused():
            raise ServerError(f"{NO_SERVER_ENV} is set: no embedded Milvus may start here; pass --host")
        running = self.status()
        if running is not None:
            raise ServerError(
                f"an embedded Milvus already runs from {self.data_dir} (pid {running.pid}, {running.uri}); "
                "use it with --host, or stop it with `loadgen server stop`"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if not (same_ports and self._launch):
                self._launch = self._command(log_dir)
            try:
                return self._launch_and_wait(log_dir)
            except PortTaken:
                # free_ports found its ports free, but a process starting beside this one (another server, a
                # parallel test) can bind one of them first: on other ports, unless the caller needs these
                if same_ports or attempt == PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch_and_wait(self, log_dir: Path) -> ServerInfo:
        assert self._launch is not None
        cmd, env, port, health_port = self._launch
        log_path = log_dir / f"{self.engine}-stdout.log"
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
        since = log.tell()
        try:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: one killpg stops every process it forks
                preexec_fn=die_with_parent if self.die_with_parent else None,  # noqa: PLW1509
            )
        finally:
            log.close()
        self.info = ServerInfo(self.engine, self._proc.pid, str(self.data_dir), port, health_port, str(log_dir))
        self.state_path.write_text(json.dumps(asdict(self.info)))
        self._wait_ready(self.info, since)
        return self.info

    def _command(self, log_dir: Path) -> tuple[list[str], dict[str, str], int, int]:
        env = dict(os.environ)
        if self.engine == "lite":
            (port,) = free_ports(1, self.avoid_ports)
            exe = str(Path(sys.executable).parent / "milvus-lite")
            if not Path(exe).exists():
                exe = shutil.which("milvus-lite") or ""
            if not exe:
                raise ServerError("the lite engine needs milvus-lite: pip install 'milvus-loadgen[lite]'")
            cmd = [exe, "server", "--data-dir", str(self.data_dir / "lite"), "--host", "127.0.0.1"]
            return [*cmd, "--port", str(port)], env, port, 0
        try:
            import milvus  # the wheel pinned in pyproject.toml (milvus==2.3.5)
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ServerError("the `milvus` wheel is not installed; run `pip install -e .`") from exc
        config = milvus.MilvusServerConfig(data_dir=str(self.data_dir))
        port_keys = [k for k in config.configurable_items if k.endswith("_port")]
        ports = free_ports(len(port_keys) + 2, self.avoid_ports)  # the last two: metrics, etcd's peer port
        config.update(**dict(zip(port_keys, ports, strict=False)))
        for key, value in self.config.items():  # update() only takes ports
            if key not in config.configurable_items and "." not in key:
                raise ServerError(f"unknown embedded Milvus config item {key!r}")
            config.set(key, value)  # a template item, or a dotted milvus.yaml path such as common.session.ttl
        health_port, etcd_peer_port = ports[-2:]
        try:
            config.resolve()  # writes configs/milvus.yaml with our ports, data and log paths
        except RuntimeError as exc:  # the wheel found one bound since free_ports drew it
            raise PortTaken(f"could not reserve ports for the embedded Milvus: {exc}") from exc
        _pin_embedded_etcd(Path(config.base_data_dir), int(config.get("etcd_port")), etcd_peer_port)
        milvus._initialize_data_files(config.base_data_dir)  # unpacks the engine binaries once
        bin_dir = Path(config.base_data_dir) / "bin"
        env.update(
            DEPLOY_MODE="STANDALONE",
            METRICS_PORT=str(health_port),
            MILVUS_RUN_DIR=str(self.data_dir / "run"),
            LD_LIBRARY_PATH=f"{bin_dir}:{env.get('LD_LIBRARY_PATH', '')}",
        )
        return [str(bin_dir / "milvus"), "run", "standalone"], env, int(config.get("proxy_port")), health_port

    def _wait_ready(self, info: ServerInfo, since: int = 0) -> None:
        deadline = time.monotonic() + self.startup_timeout
        log = Path(info.log_dir) / f"{info.engine}-stdout.log"
        while time.monotonic() < deadline:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                self.stop()
                with open(log, "rb") as f:
                    f.seek(since)
                    taken = b"address already in use" in f.read()
                raise (PortTaken if taken else ServerError)(
                    f"embedded Milvus exited with code {code} while starting"
                    + (" (a port it was given was taken meanwhile)" if taken else "")
                    + f"; see {log}"
                )
            if _healthy(info.health_port, info.port):
                return
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"embedded Milvus was not healthy within {self.startup_timeout:.0f} s; see {log}")

    # ---- stop -------------------------------------------------------------------------------------
    def stop(self, grace: float = 5.0) -> bool:
        """SIGTERM the whole group, SIGKILL what is left after ``grace`` seconds. True if one was running."""
        info = self.info or self.read_state()
        if info is None:
            return False
        pgid = info.pid
        stopped = bool(_group_members(pgid))
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if self._proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=0.05)
                if not _group_members(pgid):
                    break
                time.sleep(0.1)
            if not _group_members(pgid):
                break
        left = _group_members(pgid)
        if left:
            raise ServerError(f"embedded Milvus processes {left} survived SIGKILL")
        self._proc = None
        self.info = None
        self.state_path.unlink(missing_ok=True)
        return stopped

    def restart(self, grace: float = 5.0) -> ServerInfo:
        """Stop (if running) and start again on the same ports and data dir."""
        self.stop(grace)
        return self.start(same_ports=True)

    def __enter__(self) -> ServerInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
