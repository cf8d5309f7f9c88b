"""Bad input, one table: each case ends with one line `loadgen: error: ...` on stderr, exit code 2, no traceback, and
the server's collections (names, descriptions, row counts) exactly as they were before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from certs import make_pki
from conftest import Secure, run_cli, secure_client, snapshot
from pymilvus import MilvusClient

from loadgen.config.settings import Settings
from loadgen.milvus import collection
from loadgen.milvus.server import ServerInfo

pytestmark = pytest.mark.milvus

# id, argv ({session} {secure} {ca} {other_ca} {port} {health} {d}: filled in below), message, server, token
CASES: list[tuple[str, list[str], str, str, str]] = [
    ("unreachable host", ["run", "--host", "http://127.0.0.1:1", "--timeout", "2"],
     "cannot reach Milvus at http://127.0.0.1:1 within 2 s", "session", ""),
    ("wrong port (Milvus's HTTP health port)", ["run", "--host", "http://127.0.0.1:{health}", "--timeout", "2"],
     "cannot reach Milvus at http://127.0.0.1:", "session", ""),
    ("wrong token", ["run", "--host", "{secure}", "--tls-ca-file", "{ca}"],
     "refused the connection: UNAUTHENTICATED: auth check failure", "secure", "root:not-the-password"),
    ("TLS: a CA that did not sign the server's certificate", ["run", "--host", "{secure}", "--tls-ca-file",
     "{other_ca}", "--timeout", "3"], "within 3 s: Fail connecting to server", "secure", "secure"),
    ("TLS: plain http to a TLS server", ["run", "--host", "{secure_http}", "--timeout", "3"],
     "cannot reach Milvus at http://127.0.0.1:", "secure", "secure"),
    ("TLS option with an http host", ["run", "--host", "{session}", "--tls-ca-file", "{ca}"],
     "--tls-ca-file need an https:// --host", "session", ""),
    ("TLS: missing CA file", ["run", "--host", "{secure}", "--tls-ca-file", "{d}/none.pem"],
     "--tls-ca-file {d}/none.pem: no such file", "secure", "secure"),
    ("missing collection with --require-existing", ["run", "--require-existing", "--collection", "lg_absent"],
     "collection 'lg_absent' does not exist and --require-existing forbids creating it", "session", ""),
    ("dimension mismatch", ["run", "--collection", "lg_existing", "--dim", "32"],
     "dimension mismatch: collection 'lg_existing' has dim 16, --dim is 32", "session", ""),
    ("non-numeric users", ["run", "--users", "many"], "expected a positive integer, got 'many'", "session", ""),
    ("negative rate", ["run", "--arrival-rate", "-5"],
     "--arrival-rate must be a rate of 0 or more requests per second, got -5", "session", ""),
    ("negative spawn rate", ["run", "-r", "-5"], "argument -r/--spawn-rate: must be positive, got -5", "session", ""),
    ("stream rate not a number", ["run", "--stream-rates", "insert=fast"],
     "--stream-rates insert 'fast' is not a number", "session", ""),
    ("a zero level in --sweep-rates", ["run", "--sweep-rates", "50,0"],
     "--sweep-rates '50,0': expected comma-separated positive", "session", ""),
    ("unknown client layer", ["compare", "--layers", "pymilvus,cassandra", "--counts", "2"],
     "--layers: unknown client layer 'cassandra'", "session", ""),
    ("missing dataset file", ["run", "--dim", "16", "--dataset", "{d}/missing.fvecs"], "does not exist", "session", ""),
    ("corrupt dataset file", ["run", "--dim", "16", "--dataset", "{d}/corrupt.fvecs"], "is truncated or corrupt",
     "session", ""),
    ("dataset dim mismatch", ["run", "--dim", "16", "--dataset", "{d}/dim8.npy"], "has dim 8, --dim is 16",
     "session", ""),
    ("invalid filter", ["run", "--filter", "category <<< 3"],
     "--filter 'category <<< 3' rejected by Milvus: cannot parse expression: category <<< 3", "session", ""),
    ("invalid filter on an existing collection", ["run", "--collection", "lg_existing", "--dim", "16", "--filter",
     "category like 'x%'"], "like operation on non-string", "session", ""),
    ("invalid index params", ["run", "--index-type", "HNSW", "--index-params", '{"M": 0}'],
     "invalid index params for HNSW: M=0 must be an integer in [2, 2048]", "session", ""),
    ("existing collection not created by loadgen", ["run", "--collection", "team_prod_docs", "--dim", "32"],
     "'team_prod_docs' exists and was not created by loadgen", "session", ""),
    ("--recreate of a collection loadgen did not create", ["run", "--collection", "team_prod_docs", "--recreate",
     "--dim", "32"], "--recreate refused: collection 'team_prod_docs' was not created by loadgen", "session", ""),
    ("search params not JSON", ["run", "--search-params", "{oops"], "--search-params is not valid JSON", "session", ""),
    ("unknown task in --weights", ["run", "--weights", "search=1,frobnicate=2"], "unknown task 'frobnicate'",
     "session", ""),
    ("unknown index type", ["run", "--index-type", "DISKANN"], "invalid choice: 'DISKANN'", "session", ""),
    ("selectivity out of range", ["run", "--filter-selectivity", "1.5"],
     "--filter-selectivity must be in (0, 1], got 1.5", "session", ""),
    # `loadgen k8s` (its own validation): bad overlay values fail before any kubectl call, and touch no Milvus either
    ("k8s: unknown overlay", ["k8s", "render", "--overlay", "staging"], "argument --overlay: invalid choice: 'staging'",
     "session", ""),
    ("k8s: scale to 0 workers", ["k8s", "scale", "--workers", "0"], "--workers must be at least 1, got 0",
     "session", ""),
    ("k8s: a folder without kustomization.yaml", ["k8s", "render", "--dir", "{d}"],
     "no kustomization.yaml in {d}", "session", ""),
    ("selectivity and filter together", ["run", "--filter-selectivity", "0.1", "--filter", "category < 3"],
     "exclude each other", "session", ""),
    ("--recreate with --require-existing", ["run", "--collection", "lg_existing", "--recreate", "--require-existing",
     "--dim", "16"], "--recreate and --require-existing exclude each other", "session", ""),
    # issue 12: what Locust or the server would refuse (after a server start, or 76% failed requests), refused first
    ("--out under a file", ["run", "--out", "{d}/dim8.npy/out"], "cannot be created: {d}/dim8.npy is not a directory",
     "session", ""),
    ("--out is a file", ["run", "--out", "{d}/dim8.npy"], "--out {d}/dim8.npy exists and is not a directory",
     "session", ""),
    ("compare --out under a file", ["compare", "--counts", "2", "--out", "{d}/dim8.npy/c"],
     "cannot be created: {d}/dim8.npy is not a directory", "session", ""),
    ("--top-k above the server's limit", ["run", "--top-k", "16385"],
     "--top-k 16385 is above Milvus v2.3.5-lite's maximum of 16384", "session", ""),
    ("--dim above the server's limit", ["run", "--dim", "32769"],
     "--dim 32769 is above Milvus v2.3.5-lite's maximum of 32768", "session", ""),
    ("collection name too long for the server", ["run", "--collection", "c" * 256],
     "--collection is 256 characters; Milvus v2.3.5-lite takes at most 255", "session", ""),
    ("run time Locust cannot parse", ["run", "-t", "3 minutes"], "--run-time '3 minutes': expected e.g. 20s",
     "session", ""),
    ("run time of zero (no limit at all)", ["run", "-t", "0s"], "--run-time '0s': must be at least 1 second",
     "session", ""),
    ("sweep: run time Locust cannot parse", ["sweep", "--users", "1,2", "-t", "1q"], "--run-time '1q'",
     "session", ""),
    ("negative --processes", ["run", "--processes", "-2"], "--processes must be 0 (one process)", "session", ""),
    ("user class not in the locustfile", ["run", "NoSuchUser"],
     "user class 'NoSuchUser' is not in pymilvus_users.py; choose from AsyncPymilvusUser, PymilvusUser",
     "session", ""),
    ("locustfile that is not a .py file", ["run", "-f", "{d}/dim8.npy"], "Locust only loads .py files",
     "session", ""),
    ("ui: negative --processes", ["ui", "--host", "{session}", "--processes", "-1"],
     "--processes must be 0 (one process)", "session", ""),
    # an output folder the filesystem refuses (root may write anywhere by its permission bits, /proc takes no folder)
    ("--out under /proc", ["run", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created: /proc takes no new folder", "session", ""),
    ("--out is /proc itself", ["run", "--out", "/proc"], "--out /proc is not writable", "session", ""),
    ("sweep: --out under /proc", ["sweep", "--users", "1,2", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("capacity: --out under /proc", ["capacity", "--slo-p99-ms", "50", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("compare: --out under /proc", ["compare", "--counts", "2", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("compare --modes: --out under /proc", ["compare", "--modes", "dense,bm25", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("ui: --out under /proc", ["ui", "--host", "{session}", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("report: --out under /proc", ["report", "{d}", "--out", "/proc/nope/out"],
     "--out /proc/nope/out cannot be created", "session", ""),
    ("k8s results: --out under /proc", ["k8s", "results", "--log", "{d}/dim8.npy", "--out", "/proc/nope/k"],
     "--out /proc/nope/k cannot be created", "session", ""),
    ("server start: --data-dir under /proc", ["server", "start", "--data-dir", "/proc/nope/milvus"],
     "--data-dir /proc/nope/milvus cannot be created", "session", ""),
    ("an output file under /proc", ["run", "--latency-file", "/proc/nope/latency.json"],
     "--latency-file /proc/nope/latency.json: its folder cannot be created", "session", ""),
    ("an output file that is a folder", ["run", "--recall-file", "{d}"], "--recall-file {d} is a directory",
     "session", ""),
    ("--groundtruth-cache under /proc", ["run", "--dataset", "synthetic:uniform", "--groundtruth-cache",
     "/proc/nope/gt"], "--groundtruth-cache /proc/nope/gt cannot be created", "session", ""),
    ("missing --queries file", ["run", "--dataset", "synthetic:uniform", "--queries", "{d}/none.npy"],
     "--queries {d}/none.npy: no such file", "session", ""),
    ("missing --corpus file", ["run", "--corpus", "{d}/none.jsonl"], "--corpus {d}/none.jsonl: no such file",
     "session", ""),
    # a malformed URI: pymilvus (and urllib) would raise a bare ValueError on its port
    ("--host with a stray quote and comma", ["run", "--host", 'http://127.0.0.1:{port}",'],
     "--host 'http://127.0.0.1:{port}\",': the port must be a number from 1 to 65535", "session", ""),
    ("--host port out of range", ["run", "--host", "http://127.0.0.1:99999"], "the port must be a number",
     "session", ""),
    ("--host without a host name", ["run", "--host", "http://:{port}"], "no valid host name", "session", ""),
    ("--host with a space in the name", ["run", "--host", "http://local host:{port}"], "no valid host name",
     "session", ""),
    ("sweep: malformed --host", ["sweep", "--users", "1,2", "--host", 'http://127.0.0.1:{port}",'],
     "the port must be a number", "session", ""),
    ("capacity: malformed --host", ["capacity", "--slo-p99-ms", "50", "--host", 'http://127.0.0.1:{port}",'],
     "the port must be a number", "session", ""),
    ("compare: malformed --host", ["compare", "--counts", "2", "--host", 'http://127.0.0.1:{port}",'],
     "the port must be a number", "session", ""),
    ("ui: malformed --host", ["ui", "--host", 'http://127.0.0.1:{port}",'], "the port must be a number",
     "session", ""),
    ("malformed --milvus-metrics-url", ["run", "--milvus-metrics-url", 'http://127.0.0.1:{health}",/metrics'],
     "--milvus-metrics-url 'http://127.0.0.1:{health}\",/metrics': the port must be a number", "session", ""),
]  # fmt: skip


def fill(text: str, values: dict[str, str]) -> str:
    """``{name}`` placeholders only (JSON arguments keep their braces)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.fixture(scope="module")
def existing(milvus: ServerInfo) -> Iterator[None]:
    """A loadgen-owned collection (dim 16) and a user's own collection, both present before every bad run."""
    c = MilvusClient(uri=milvus.uri, timeout=10, alias="bad-input-setup")
    owned = Settings(uri=milvus.uri, collection="lg_existing", dim=16, rows=20)
    collection.prepare(owned, progress=False)
    c.create_collection("team_prod_docs", dimension=32)
    yield
    collection.drop_if_owned(owned)
    c.drop_collection("team_prod_docs")
    c.close()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    rec = np.zeros(1, dtype=[("dim", "<i4"), ("vec", "<f4", (16,))])
    rec["dim"] = 16
    (d / "corrupt.fvecs").write_bytes(rec.tobytes() * 3 + b"\x01\x02\x03")  # a truncated 4th record
    np.save(d / "dim8.npy", np.ones((100, 8), dtype=np.float32))
    make_pki(d / "other", "not-the-server's")
    return d


@pytest.mark.parametrize(("case", "argv", "message", "server", "token"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    request: pytest.FixtureRequest, milvus: ServerInfo, existing: None, bad_files: Path, tmp_path: Path,
    case: str, argv: list[str], message: str, server: str, token: str,
) -> None:  # fmt: skip
    assert len(CASES) >= 69
    secure: Secure | None = request.getfixturevalue("secure_milvus") if server == "secure" else None
    values = {"session": milvus.uri, "port": str(milvus.port), "health": str(milvus.health_port), "d": str(bad_files)}
    values["ca"] = str(secure.pki.ca) if secure else str(bad_files / "other" / "ca.pem")
    if secure:
        values.update(secure=secure.uri, secure_http=secure.uri.replace("https://", "http://"))
        values["other_ca"] = str(bad_files / "other" / "ca.pem")
    args = [fill(a, values) for a in argv]
    if args[0] in ("run", "compare", "sweep", "capacity") and "--host" not in args:
        args[1:1] = ["--host", milvus.uri]
    if args[0] in ("run", "sweep") and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    env = {"LOADGEN_MILVUS_TOKEN": secure.token if secure and token == "secure" else token}
    client = secure_client(secure) if secure else MilvusClient(uri=milvus.uri, timeout=10, alias="bad-input")
    try:
        before = snapshot(client)
        timed = args[0] in ("run", "sweep") and "-t" not in args
        proc = run_cli(*args, *(["-t", "3s"] if timed else []), timeout=90, env=env)
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("loadgen: error: "), proc.stderr[-3000:]
        assert fill(message, values) in lines[0], lines[0]
        assert "Traceback" not in proc.stderr + proc.stdout
        assert snapshot(client) == before
        assert not (tmp_path / "out").exists()  # no results dir written either
    finally:
        client.close()


def test_the_documented_limits_are_the_servers(client: MilvusClient) -> None:
    """loadgen.cli.preflight refuses --dim, --top-k and long collection names from a table of Milvus
    2.x limits; the embedded 2.3.5 takes each limit and refuses one past it."""
    from pymilvus import MilvusException

    from loadgen.cli.preflight import limits_for

    limits = limits_for(client.get_server_version())
    assert limits == {"dim": 32768, "top_k": 16384, "collection_name": 255}
    name = "lg_limits"
    client.create_collection(name, dimension=limits["dim"])
    try:
        with pytest.raises(MilvusException):
            client.create_collection("lg_limits_over", dimension=limits["dim"] + 1)
        client.drop_collection(name)
        client.create_collection(name, dimension=4)
        client.insert(name, [{"id": i, "vector": [0.1 * i, 0.2, 0.3, 0.4]} for i in range(3)])
        client.search(name, [[0.1, 0.2, 0.3, 0.4]], limit=limits["top_k"])
        with pytest.raises(MilvusException, match="16384"):
            client.search(name, [[0.1, 0.2, 0.3, 0.4]], limit=limits["top_k"] + 1)
        long_name = "c" * limits["collection_name"]
        client.create_collection(long_name, dimension=4)
        client.drop_collection(long_name)
        with pytest.raises(MilvusException):
            client.create_collection("c" * (limits["collection_name"] + 1), dimension=4)
    finally:
        client.drop_collection(name)
