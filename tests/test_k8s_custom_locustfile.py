"""Your own locustfile on Kubernetes (issue 14): `loadgen k8s render --locustfile PATH` puts the file into the
locustfiles ConfigMap and points the master, the headless Job and the workers at it. Rendered by a real kubectl,
validated with kubernetes-validate, and run as local master + 2 workers against the embedded Milvus."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, run_cli
from k8s_render import container, kubectl, locustfiles, one, pod_spec, rendered

from loadgen.cli import k8s, k8s_locustfile
from loadgen.errors import LoadgenError
from loadgen.milvus.server import ServerInfo

EXAMPLE = ROOT / "examples" / "search_then_fetch.py"
MOUNTED = "/etc/loadgen/locustfiles/search_then_fetch.py"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


@cache
def _custom_text(overlay: str, image: str | None = None) -> str:
    return k8s.render(k8s.K8S_DIR, overlay, image=image, kubectl=kubectl(), locustfile=EXAMPLE)


def _custom(overlay: str, image: str | None = None) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_custom_text(overlay, image)) if d]


def _locust_containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: container(d) for d in docs if d["kind"] in ("Deployment", "Job")}


def _workload(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] in ("Deployment", "Job") and d["metadata"]["name"] == name)


def _locustfile_arg(c: dict[str, Any]) -> str:
    args = c["args"]
    return str(args[args.index("-f") + 1])


@pytest.mark.parametrize("overlay", ["default", "headless"])
def test_the_configmap_holds_the_file_and_every_locust_container_runs_it(overlay: str) -> None:
    docs, plain = _custom(overlay), rendered(overlay)
    files = locustfiles(docs)
    assert files["search_then_fetch.py"] == EXAMPLE.read_text()  # byte for byte
    assert files["locustfile.py"] == locustfiles(plain)["locustfile.py"]  # the built-in one stays, unused
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("loadgen-locustfiles"))
    ours = _locust_containers(docs)
    assert set(ours) == set(_locust_containers(plain)) and len(ours) == 2  # master (Deployment or Job) + workers
    for name, c in ours.items():
        assert _locustfile_arg(c) == MOUNTED, name
        mount = next(m for m in c["volumeMounts"] if m["name"] == "locustfiles")
        assert mount["mountPath"] == "/etc/loadgen/locustfiles"
        volume = next(v for v in pod_spec(_workload(docs, name))["volumes"] if v["name"] == "locustfiles")
        assert volume["configMap"]["name"] == cm["metadata"]["name"]  # the hashed name: a new file rolls the pods
    # only the locustfile changed: the same objects, the same args but for that one path
    assert [(d["kind"], d["metadata"]["name"].split("-")[0]) for d in docs] == [
        (d["kind"], d["metadata"]["name"].split("-")[0]) for d in plain
    ]
    theirs = _locust_containers(plain)
    for name, c in ours.items():
        swapped = [MOUNTED if a == "/etc/loadgen/locustfiles/locustfile.py" else a for a in theirs[name]["args"]]
        assert c["args"] == swapped, name
    assert cm["metadata"]["name"] != next(
        d["metadata"]["name"] for d in plain if d["kind"] == "ConfigMap" and "locustfiles" in d["metadata"]["name"]
    )


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_custom_manifests_are_valid_kubernetes(version: str, tmp_path: Path) -> None:
    docs = [d for d in _custom("headless", "ghcr.io/acme/milvus-loadgen:1.2.3") if d["kind"] != "Milvus"]
    files = []
    for i, obj in enumerate(docs):
        f = tmp_path / f"{i:02d}-{obj['kind']}-{obj['metadata']['name']}.yaml"
        f.write_text(yaml.safe_dump(obj))
        files.append(str(f))
    proc = subprocess.run(
        [str(VALIDATE), "--strict", "--quiet", "-k", version, *files],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    images = {c["image"] for c in _locust_containers(docs).values()}
    assert images == {"ghcr.io/acme/milvus-loadgen:1.2.3"}  # --image and --locustfile together


def test_cli_render_prints_them_and_apply_down_take_the_same_flag() -> None:
    proc = run_cli("k8s", "render", "--overlay", "headless", "--locustfile", str(EXAMPLE), "--kubectl", kubectl())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _custom_text("headless")
    for command in ("apply", "down"):
        dry = run_cli("k8s", command, "--dry-run", "--locustfile", str(EXAMPLE), "--kubectl", kubectl())
        assert dry.returncode == 0 and dry.stdout.startswith("kubectl "), dry.stderr


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (None, None, "no such file"),
        ("notes.txt", "from loadgen import VectorStoreUser\n", "not a Python file (.py)"),
        ("my app.py", "from loadgen import VectorStoreUser\n", "a ConfigMap key may hold only"),
        ("broken.py", "from loadgen import VectorStoreUser\nclass A(:\n", "invalid Python at line 2"),
        ("plain.py", "from locust import HttpUser\n", "imports nothing from loadgen"),
    ],
)
def test_bad_locustfile_is_one_line_before_kubectl(
    tmp_path: Path, name: str | None, text: str | None, message: str
) -> None:
    path = tmp_path / (name or "missing.py")
    if text is not None:
        path.write_text(text)
    for command in ("render", "apply"):
        # a kubectl that does not exist: the file is refused before kubectl is looked for
        proc = run_cli("k8s", command, "--locustfile", str(path), "--kubectl", "/nonexistent/kubectl")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0] == f"loadgen: error: --locustfile {path}: " + lines[0].split(f"{path}: ", 1)[1]
        assert message in lines[0] and not proc.stdout


def test_manifests_without_the_built_in_locustfile_are_refused(tmp_path: Path) -> None:
    """The control for the args patch: nothing to point at is an error, not a deployment of the wrong file."""
    elsewhere = _custom_text("default").replace("/etc/loadgen/locustfiles/", "/opt/")
    with pytest.raises(LoadgenError, match="no Locust container in the manifests runs"):
        k8s_locustfile.overlay(EXAMPLE, elsewhere, tmp_path)


# ---- the rendered pods, as local processes against the embedded Milvus ---------------------------------------


@pytest.mark.milvus
@pytest.mark.slow
def test_headless_job_and_two_workers_run_the_example(milvus: ServerInfo, tmp_path: Path) -> None:
    from test_k8s_local import Pods, per_worker

    pods = Pods(tmp_path, milvus, "headless", "lg_k8s_custom")
    pods.docs = _custom("headless")  # the same pods, from the manifests rendered with --locustfile
    for name, text in locustfiles(pods.docs).items():  # what the ConfigMap mounts
        (pods.files / name).write_text(text)
    try:
        job = one(pods.docs, "Job", "locust-headless")
        assert _locustfile_arg(container(job)) == MOUNTED
        master = pods.start(
            "job", container(job), **{"-t": "6s", "-u": "4", "-r": "4", "--expect-workers-max-wait": "90"}
        )
        workers = [pods.worker("worker-1"), pods.worker("worker-2")]
        assert master.wait(timeout=180) == 0, pods.stderr("job")[-3000:]
        for w in workers:
            assert w.wait(timeout=30) == 0, pods.stderr("worker-1")[-2000:]
    finally:
        pods.stop()
    summary = json.loads(pods.stdout("job").strip().splitlines()[-1])
    assert summary["run"]["locustfile"] == str(pods.files / "search_then_fetch.py")
    assert summary["run"]["classes"] == ["SearchThenFetch"]  # the example's user, not the built-in ones
    counts = per_worker(pods.stderr("job"))
    assert len(counts) == 2 and all(n > 0 for n in counts.values()), counts  # both workers reported
    rows = {(m["type"], m["name"]): m for m in summary["requests"]}
    flows = sum(m["requests"] for m in summary["requests"] if m["type"] == "flow")  # not store calls: not in totals
    assert summary["totals"]["requests"] == sum(counts.values()) - flows and summary["totals"]["failures"] == 0
    for key in [("pymilvus", "search"), ("pymilvus", "get"), ("pymilvus-async", "search"),
                ("pymilvus-async", "get"), ("flow", "search_then_fetch")]:  # fmt: skip
        assert rows[key]["requests"] > 0 and rows[key]["failures"] == 0, (key, sorted(rows))
    assert not any(t in ("pymilvus", "pymilvus-async") and n == "insert" for t, n in rows)  # not the built-in mix
