"""The rendered pods' exact commands, run as local processes against the embedded Milvus.

Each test reads a container's command, args and env from ``kubectl kustomize`` output, and changes only what a pod
gets from the cluster: Service names become 127.0.0.1, ports become free ones, mounted paths become temp folders
(the locustfile written from the rendered ConfigMap), the Milvus Service becomes the test's Milvus, and the workload
is made small. Everything else (flags, entry points, the Job's shell wrapper) runs as rendered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import server_counter
from k8s_render import container, locustfiles, one, options, rendered
from pymilvus import MilvusClient
from run_report_html import check_same_figures

from loadgen.milvus.server import ServerInfo, free_ports

pytestmark = [pytest.mark.milvus, pytest.mark.slow]
BIN = str(Path(sys.executable).parent)  # the image's `python` and `loadgen` are this venv's
TOKEN = "root:k8s-Secret-Token-42"


class Pods:
    """Local stand-ins for the pods: start rendered containers as process groups, stop them all at the end."""

    def __init__(self, tmp: Path, milvus: ServerInfo, overlay: str, collection: str) -> None:
        self.tmp, self.milvus, self.docs = tmp, milvus, rendered(overlay)
        self.master_port, self.web_port = free_ports(2)
        self.files = tmp / "locustfiles"
        self.files.mkdir()
        for name, text in locustfiles(self.docs).items():
            (self.files / name).write_text(text)
        self.results = tmp / "results"
        self.results.mkdir()
        # the overlay's options, made small for a test run
        self.options = {**options(self.docs), "LOADGEN_ROWS": "1000", "LOADGEN_DIM": "32"}
        self.options["LOADGEN_COLLECTION"] = collection
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: dict[str, Path] = {}

    def argv(self, c: dict[str, Any], overrides: dict[str, str]) -> list[str]:
        out = []
        words = c.get("command", []) + c.get("args", [])
        for i, word in enumerate(words):
            previous = words[i - 1] if i else ""
            if previous in overrides:
                word = overrides[previous]  # noqa: PLW2901 - a flag's value, e.g. -t 5m -> -t 6s
            elif word == "locust-master":
                word = "127.0.0.1"  # noqa: PLW2901
            elif word == "5557":
                word = str(self.master_port)  # noqa: PLW2901
            elif word == "8089":
                word = str(self.web_port)  # noqa: PLW2901
            word = word.replace("/etc/loadgen/locustfiles", str(self.files))  # noqa: PLW2901
            out.append(word.replace("/results", str(self.results)))
        return out

    def env(self, c: dict[str, Any]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LOADGEN_", "LOCUST_"))}
        env = {**base, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
        refs = [ref.get("configMapRef", {}).get("name", "") for ref in c.get("envFrom", [])]
        if any(name.startswith("loadgen-options") for name in refs):
            env.update(self.options)
        for item in c.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif item["valueFrom"].get("secretKeyRef", {}).get("name") == "loadgen-milvus":
                env[item["name"]] = TOKEN  # as if `loadgen k8s apply` had made the Secret (no auth here: ignored)
        if "LOCUST_HOST" in env:
            assert env["LOCUST_HOST"] == "http://loadgen-milvus-milvus:19530"  # the operator's Service
            env["LOCUST_HOST"] = self.milvus.uri
        env["HOME"] = str(self.tmp)
        return env

    def start(self, name: str, c: dict[str, Any], **overrides: str) -> subprocess.Popen[str]:
        log = self.tmp / f"{name}.log"
        out = self.tmp / f"{name}.out"
        self.logs[name] = log
        proc = subprocess.Popen(
            self.argv(c, overrides), env=self.env(c), cwd=self.tmp, text=True, start_new_session=True,
            stdout=out.open("w"), stderr=log.open("w"),
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def worker(self, name: str) -> subprocess.Popen[str]:
        """A worker pod: its init container (wait for the master), then the worker."""
        dep = one(self.docs, "Deployment", "locust-worker")
        init = self.start(f"{name}-init", container(dep, "wait-for-master", init=True))
        assert init.wait(timeout=60) == 0, self.stderr(f"{name}-init")
        return self.start(name, container(dep))

    def stderr(self, name: str) -> str:
        return self.logs[name].read_text()

    def stdout(self, name: str) -> str:
        return (self.tmp / f"{name}.out").read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def pods(milvus: ServerInfo, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pods]:
    overlay, collection = request.param
    p = Pods(tmp_path, milvus, overlay, collection)
    yield p
    p.stop()


def per_worker(stderr: str) -> dict[str, int]:
    return json.loads(stderr.split("requests per worker: ", 1)[1].splitlines()[0])


@pytest.mark.parametrize("pods", [("headless", "lg_k8s_job")], indirect=True)
def test_headless_job_with_two_workers_merges_their_stats(
    pods: Pods, milvus: ServerInfo, client: MilvusClient, tmp_path: Path
) -> None:
    searches_before = server_counter(milvus, "Search")
    job = one(pods.docs, "Job", "locust-headless")
    pods.options["LOADGEN_CHECK_P99_MS"] = "0.001"  # a check no run can pass: the Job must fail on it
    master = pods.start("job", container(job), **{"-t": "6s", "-u": "6", "-r": "6", "--expect-workers-max-wait": "90"})
    workers = [pods.worker("worker-1"), pods.worker("worker-2")]
    assert master.wait(timeout=180) == 3, pods.stderr("job")[-3000:]  # checks hold in the Job, exit code 3
    for w in workers:
        assert w.wait(timeout=30) == 0  # the master's quit message ends them cleanly
    # the JSON summary is the Job's last stdout line, and `loadgen k8s results` reads it from the log
    summary = json.loads(pods.stdout("job").strip().splitlines()[-1])
    assert summary["format"] == "milvus-loadgen/results/v2" and summary["run"]["mode"] == "kubernetes-job"
    assert summary["checks"]["failed"] and all(line in pods.stderr("job") for line in summary["checks"]["failed"])
    out = tmp_path / "collected"
    collected = subprocess.run(
        [f"{BIN}/loadgen", "k8s", "results", "--log", str(tmp_path / "job.out"), "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert collected.returncode == 3, collected.stderr  # the Job's own exit code: its check failed
    assert json.loads((out / "results.json").read_text()) == summary and "TOTAL" in collected.stdout
    # both workers contributed, and the master's totals are exactly their sum
    counts = per_worker(pods.stderr("job"))
    assert len(counts) == 2 and all(n > 0 for n in counts.values()), counts
    assert summary["totals"]["requests"] == sum(counts.values()) and summary["totals"]["failures"] == 0
    # our microsecond histograms (latency.json) were merged from both workers: one sample per successful request
    assert summary["run"]["percentiles_from"] == "hdr"
    assert sum(m["successes"] for m in summary["requests"]) == summary["totals"]["requests"]
    latency = json.loads((pods.results / "latency.json").read_text())
    assert sum(r["count"] for r in latency["requests"]) == summary["totals"]["requests"]
    # the rest of what the Job writes to its volume
    for name in ("results.json", "report.html", "locust-report.html", "stats_stats.csv", "locust.json"):
        assert (pods.results / name).stat().st_size > 0, name
    check_same_figures(pods.results)  # the Job's report.html is loadgen's, with results.json's figures
    # what we counted is what Milvus served, and the settings record has no secret
    ours = sum(m["requests"] for m in summary["requests"] if m["name"] == "search")
    assert ours > 0 and server_counter(milvus, "Search") - searches_before == ours
    assert summary["settings"]["collection"] == "lg_k8s_job" and "milvus_token" not in summary["settings"]
    assert summary["settings"]["token_set"] is True  # the Secret reached the pods' settings...
    for f in [*tmp_path.glob("*.log"), *tmp_path.glob("*.out"), *pods.results.iterdir()]:
        assert TOKEN not in f.read_text(errors="replace"), f  # ...and nothing they wrote
    assert summary["run"]["users"] == 6 and summary["run"]["run_time"] == "6s" and summary["run"]["expect_workers"] == 2
    assert not client.has_collection("lg_k8s_job")  # created by loadgen on the master, dropped at the end


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = resp.read().decode()
        return json.loads(body) if body.startswith(("{", "[")) else resp.status


def _until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.parametrize("pods", [("default", "lg_k8s_ui")], indirect=True)
def test_web_ui_master_rebalances_users_as_workers_come_and_go(pods: Pods, client: MilvusClient) -> None:
    master = pods.start("master", container(one(pods.docs, "Deployment", "locust-master")))
    web = f"http://127.0.0.1:{pods.web_port}"
    assert _until("the readiness probe (GET / on the web port)", lambda: _get(web + "/") == 200)
    first = pods.worker("worker-1")
    _until("worker 1", lambda: len(_get(web + "/stats/requests")["workers"]) == 1)
    form = urllib.parse.urlencode({"user_count": 4, "spawn_rate": 4, "host": pods.milvus.uri}).encode()
    with urllib.request.urlopen(web + "/swarm", data=form, timeout=60) as resp:
        assert json.loads(resp.read())["success"] is True
    _until("requests", lambda: _get(web + "/stats/requests")["total_rps"] > 0)

    def live() -> list[dict[str, Any]]:
        return [w for w in _get(web + "/stats/requests")["workers"] if w["state"] != "missing"]

    # the HPA scales up: a worker joins mid-run and gets a share of the 4 users
    pods.worker("worker-2")
    _until("the new worker to take users", lambda: len(live()) == 2 and all(w["user_count"] > 0 for w in live()))
    # the HPA scales down (or a node dies): with --enable-rebalancing the master moves the lost worker's users to
    # the survivor as soon as its heartbeats stop (a few seconds); without it they stay lost for about a minute
    os.killpg(first.pid, signal.SIGKILL)
    _until("the survivor to run all 4 users", lambda: [w["user_count"] for w in live()] == [4], timeout=25)
    with urllib.request.urlopen(urllib.request.Request(web + "/stop", data=b"", method="POST"), timeout=30) as r:
        assert r.status == 200
    os.killpg(master.pid, signal.SIGTERM)  # what Kubernetes sends on `loadgen k8s down`
    assert master.wait(timeout=60) == 0, pods.stderr("master")[-3000:]
    assert not client.has_collection("lg_k8s_ui")  # the master drops what it created when it quits


@pytest.mark.parametrize("pods", [("headless", "lg_k8s_alone")], indirect=True)
def test_job_master_without_workers_gives_up_after_its_wait(pods: Pods) -> None:
    job = one(pods.docs, "Job", "locust-headless")
    start = time.monotonic()
    master = pods.start("job", container(job), **{"--expect-workers-max-wait": "3", "-t": "5s"})
    code = master.wait(timeout=120)
    err = pods.stderr("job")
    assert code == 1, err[-2000:]
    assert "Gave up waiting for workers to connect" in err
    # Locust exits at once (no quitting, so no results): one line says so
    assert "loadgen: error: the run wrote no results (Locust exit code 1)" in err
    assert not pods.stdout("job").strip()  # no summary line: nothing ran
    assert time.monotonic() - start < 90


@pytest.mark.parametrize("pods", [("default", "lg_k8s_wrong")], indirect=True)
def test_worker_pointed_at_a_wrong_master_says_so(pods: Pods) -> None:
    init = container(one(pods.docs, "Deployment", "locust-worker"), "wait-for-master", init=True)
    start = time.monotonic()
    proc = pods.start("init", init, **{"--timeout": "3"})  # nothing listens on the (free) master port
    assert proc.wait(timeout=60) == 2
    lines = pods.stderr("init").strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"loadgen: error: no Locust master at 127.0.0.1:{pods.master_port} after 3 s")
    assert "check --master-host/--master-port (the locust-master Service)" in lines[0]
    assert time.monotonic() - start < 30
