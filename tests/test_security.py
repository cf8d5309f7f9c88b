"""Token and TLS: they reach every client layer, a real search runs over TLS with authentication on, and the token
never shows up in logs, results, reports or the web UI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from certs import make_pki
from conftest import ROOT, Secure, run_cli, secure_client

from loadgen.milvus.server import free_ports


@pytest.mark.parametrize("mutual", [False, True], ids=["one-way TLS", "mutual TLS"])
def test_token_and_tls_options_reach_every_client_layer(tmp_path: Path, mutual: bool) -> None:
    pki = make_pki(tmp_path)
    script = ROOT / "tests" / "scripts" / "client_kwargs.py"
    cert, key = (str(pki.client_cert), str(pki.client_key)) if mutual else ("", "")
    proc = subprocess.run(
        [sys.executable, str(script), str(pki.ca), cert, key],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(seen) == {
        "setup MilvusClient", "pymilvus MilvusClient", "pymilvus AsyncMilvusClient",
        "langchain connection_args", "langchain Milvus", "langchain AsyncMilvusClient",
        "llamaindex MilvusVectorStore", "llamaindex AsyncMilvusClient",
    }  # fmt: skip
    tls = (
        {"client_pem_path": cert, "client_key_path": key, "ca_pem_path": str(pki.ca)}
        if mutual
        else {"server_pem_path": str(pki.ca)}
    )
    for layer, kwargs in seen.items():
        if layer == "langchain Milvus":  # the store gets them as connection_args (checked above), not as kwargs
            continue
        expected = {"uri": "https://127.0.0.1:19530", "token": "root:tok-XYZ", "secure": True, "timeout": 3.0}
        expected.update(server_name="localhost", **tls)
        assert {k: kwargs.get(k) for k in expected} == expected, layer


def _run_over_tls(secure: Secure, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "run", "--host", secure.uri, "--tls-ca-file", str(secure.pki.ca), "--tls-server-name", "localhost",
        "-u", "2", "-t", "5s", "--rows", "200", "--dim", "8", "--weights", "search=4,insert=1",
        "--out", str(out), *extra, timeout=180, env={"LOADGEN_MILVUS_TOKEN": secure.token},
    )  # fmt: skip


def _leaks(secret: str) -> list[str]:
    """The token and what a log line might show of it: the password, and the base64 a gRPC header carries."""
    password = secret.split(":", 1)[1]
    return [secret, password, base64.b64encode(secret.encode()).decode()]


@pytest.mark.milvus
@pytest.mark.slow
def test_search_over_tls_with_auth_and_the_token_is_nowhere(secure_milvus: Secure, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run_over_tls(secure_milvus, out, "--collection", "lg_secure")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    stats = {(m["type"], m["name"]): m for m in res["requests"]}
    for flavour in ("pymilvus", "pymilvus-async"):  # real searches over TLS, authenticated
        assert stats[(flavour, "search")]["requests"] > 0 and stats[(flavour, "search")]["failures"] == 0
    assert res["settings"]["token_set"] is True and res["settings"]["tls_ca_file"] == str(secure_milvus.pki.ca)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"results.json", "latency.json", "report.html", "locust.json", "stats_stats.csv"} <= names, names
    for leak in _leaks(secure_milvus.token):
        assert leak not in proc.stdout and leak not in proc.stderr
        for path in files:
            assert leak not in path.read_text(errors="replace"), path
    c = secure_client(secure_milvus)
    assert not c.has_collection("lg_secure")  # cleanup ran over TLS too
    c.close()


@pytest.mark.milvus
@pytest.mark.slow
def test_wrong_ca_fails_in_one_line(secure_milvus: Secure, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", "other")
    proc = run_cli(
        "run", "--host", secure_milvus.uri, "--tls-ca-file", str(other.ca), "--timeout", "2", "--out", str(tmp_path),
        timeout=60, env={"LOADGEN_MILVUS_TOKEN": secure_milvus.token},
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("loadgen: error: cannot reach Milvus at https://127.0.0.1:") and "--tls-ca-file" in line


@pytest.mark.milvus
@pytest.mark.slow
def test_web_ui_and_its_json_never_show_the_token(secure_milvus: Secure) -> None:
    (port,) = free_ports(1)
    env = {**os.environ, "LOADGEN_MILVUS_TOKEN": secure_milvus.token}
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "locust"), "-f", "locustfiles/pymilvus_users.py",
         "--host", secure_milvus.uri,
         "--tls-ca-file", str(secure_milvus.pki.ca), "--rows", "200", "--dim", "8", "--collection", "lg_secure_ui",
         "--web-host", "127.0.0.1", "--web-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> str:
        return urllib.request.urlopen(base + path, timeout=10).read().decode(errors="replace")

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pages = {"/": get("/")}
                break
            except OSError:
                assert time.monotonic() < deadline, "web UI did not answer"
                time.sleep(0.5)
        form = urllib.parse.urlencode({"user_count": 2, "spawn_rate": 2, "host": secure_milvus.uri}).encode()
        urllib.request.urlopen(base + "/swarm", data=form, timeout=60).read()
        deadline = time.monotonic() + 60
        while json.loads(get("/stats/requests"))["total_rps"] == 0:  # the swarm runs, with the token from env
            assert time.monotonic() < deadline, get("/stats/requests")[-2000:]
            time.sleep(1)
        paths = ["/", "/stats/requests", "/stats/report", "/stats/requests/csv", "/stats/failures/csv", "/exceptions"]
        paths += ["/logs", "/tasks", "/exceptions/csv"]
        pages.update({p: get(p) for p in paths})
        stats = json.loads(pages["/stats/requests"])
        assert not [s for s in stats["stats"] if s["num_failures"]], stats["errors"]
        urllib.request.urlopen(base + "/stop", data=b"", timeout=30).read()
        time.sleep(2)
    finally:
        ui.terminate()
        try:
            output, _ = ui.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            ui.kill()
            output, _ = ui.communicate()
    for leak in _leaks(secure_milvus.token):
        for path, page in pages.items():
            assert leak not in page, path
        assert leak not in output  # Locust's and loadgen's log
    c = secure_client(secure_milvus)
    if c.has_collection("lg_secure_ui"):
        c.drop_collection("lg_secure_ui")
    c.close()
