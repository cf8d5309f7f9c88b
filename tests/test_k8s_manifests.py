"""The Kubernetes manifests, rendered by a real kubectl, validated statically (no cluster can run here).

Every overlay is rendered with ``kubectl kustomize``; every object is checked with ``kubernetes-validate --strict``
for Kubernetes 1.30 and 1.33; the Milvus resource (a CRD those schemas do not know) against our own JSON schema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, run_cli
from k8s_render import OVERLAYS, container, kubectl, locustfiles, one, options, pod_spec, rendered

from loadgen.cli import k8s
from loadgen.cli.k8s_tools import find_kubectl
from loadgen.errors import LoadgenError

K8S_VERSIONS = ("1.30.0", "1.33.0")
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
SCHEMA = json.loads((ROOT / "k8s" / "milvus" / "milvus.schema.json").read_text())
LOADGEN_USER = 10001


def _validate(objs: list[dict[str, Any]], version: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    files = []
    for i, obj in enumerate(objs):  # one file per object: a failure names its file, so its kind and name
        f = tmp_path / f"{i:02d}-{obj['kind']}-{obj['metadata']['name']}.yaml"
        f.write_text(yaml.safe_dump(obj))
        files.append(str(f))
    return subprocess.run(
        [str(VALIDATE), "--strict", "--quiet", "-k", version, *files],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_kubernetes(overlay: str, version: str, tmp_path: Path) -> None:
    docs = rendered(overlay)
    # plus the token Secret `loadgen k8s apply` sends through stdin (kept out of the manifests on purpose)
    # CRDs (Milvus; prometheus-operator's monitors in the monitoring variant) are checked against our schemas
    crds = {"Milvus", "PodMonitor", "ServiceMonitor"}
    builtin = [d for d in docs if d["kind"] not in crds] + [json.loads(k8s.token_secret("loadgen", "root:x"))]
    assert {d["kind"] for d in builtin} >= {"Namespace", "Service", "Deployment", "HorizontalPodAutoscaler"}
    proc = _validate(builtin, version, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout and "FAIL" not in proc.stdout.upper(), proc.stdout


def test_strict_validation_catches_a_misspelled_field(tmp_path: Path) -> None:
    """The control for the test above: the validator really rejects what Kubernetes would."""
    worker = one(rendered("default"), "Deployment", "locust-worker")
    pod_spec(worker)["enableServiceLink"] = False  # the classic typo: the real field ends in 's'
    proc = _validate([worker], "1.33.0", tmp_path)
    assert proc.returncode != 0 and "enableServiceLink" in proc.stdout + proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_milvus_resource_matches_our_schema(overlay: str) -> None:
    milvus = one(rendered(overlay), "Milvus")
    jsonschema.validate(milvus, SCHEMA)
    assert milvus["metadata"]["namespace"] == "loadgen"
    bad = json.loads(json.dumps(milvus))
    del bad["spec"]["dependencies"]["msgStreamType"]  # cluster mode must name its message stream
    with pytest.raises(jsonschema.ValidationError, match="msgStreamType"):
        jsonschema.validate(bad, SCHEMA)


def test_perf_milvus_has_more_query_nodes_and_resources_than_dev() -> None:
    dev, perf = one(rendered("default"), "Milvus")["spec"], one(rendered("perf"), "Milvus")["spec"]
    assert perf["components"]["queryNode"]["replicas"] > dev["components"]["queryNode"]["replicas"]
    assert "resources" in perf["components"]["queryNode"] and "resources" in dev["components"]
    assert dev["mode"] == perf["mode"] == "cluster"
    hpa = one(rendered("perf"), "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] > one(rendered("default"), "HorizontalPodAutoscaler")["spec"]["minReplicas"]


def test_helm_values_describe_the_same_cluster() -> None:
    values = yaml.safe_load((ROOT / "k8s" / "milvus" / "helm-values.yaml").read_text())
    cr = yaml.safe_load((ROOT / "k8s" / "milvus" / "base" / "milvus.yaml").read_text())
    assert values["cluster"]["enabled"] is True
    assert values["woodpecker"]["enabled"] is True and values["streaming"]["enabled"] is True
    assert values["pulsarv3"]["enabled"] is False and values["kafka"]["enabled"] is False
    assert cr["spec"]["dependencies"]["msgStreamType"] == "woodpecker"
    image = values["image"]["all"]
    assert f"{image['repository']}:{image['tag']}" == cr["spec"]["components"]["image"]


def test_tracing_variant_traces_locust_and_milvus_to_one_collector() -> None:
    docs = rendered("tracing")
    collector = "otel-collector.observability:4317"
    for kind, name in (("Deployment", "locust-master"), ("Deployment", "locust-worker")):
        env = {e["name"]: e.get("value") for e in container(one(docs, kind, name))["env"]}
        assert env["LOCUST_ENABLE_OPENTELEMETRY"] == "true", name  # Locust's --otel, as an env var
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{collector}" and float(env["LOADGEN_OTEL_SAMPLE"]) < 1
    trace = one(docs, "Milvus")["spec"]["config"]["trace"]
    assert trace == {"exporter": "otlp", "sampleFraction": 0, "otlp": {"endpoint": collector, "secure": False}}
    helm = yaml.safe_load((ROOT / "k8s" / "milvus" / "helm-values-tracing.yaml").read_text())
    assert yaml.safe_load(helm["extraConfigFiles"]["user.yaml"])["trace"] == trace  # the Helm way, the same
    assert "LOCUST_ENABLE_OPENTELEMETRY" not in json.dumps(rendered("default"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_locust_pods_are_locked_down_and_sized(overlay: str) -> None:
    docs = rendered(overlay)
    pods = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert pods
    for obj in pods:
        spec, where = pod_spec(obj), obj["metadata"]["name"]
        assert spec["enableServiceLinks"] is False, where  # else LOCUST_MASTER_PORT=tcp://... breaks Locust
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == LOADGEN_USER, where
        for c in spec["containers"] + spec.get("initContainers", []):
            assert c["image"] == "registry.example.com/milvus-loadgen:0.1.0", (where, c["name"])
            assert set(c["resources"]) == {"requests", "limits"}, (where, c["name"])
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            for env in c.get("env", []):
                if env["name"] == "LOADGEN_MILVUS_TOKEN":  # the token only ever comes from the Secret
                    assert "value" not in env and env["valueFrom"]["secretKeyRef"]["name"] == "loadgen-milvus"
    master = [d for d in pods if d["metadata"]["labels"]["app.kubernetes.io/component"] == "master"]
    assert len(master) == 1
    mc = container(master[0])
    assert "readinessProbe" in mc and "livenessProbe" in mc
    assert "--master" in mc["args"] and "--enable-rebalancing" in mc["args"]  # HPA-added workers take users
    worker = one(docs, "Deployment", "locust-worker")
    assert "--worker" in container(worker)["args"]
    assert container(worker, "wait-for-master", init=True)["command"] == ["loadgen", "k8s", "wait-master"]
    files = locustfiles(docs)
    assert "locustfile.py" in files
    code = [line for line in files["locustfile.py"].splitlines() if line.startswith(("import", "from"))]
    assert code[0] == "import loadgen.runtime  # first: the gevent/asyncio policy"
    assert int(options(docs)["LOADGEN_ROWS"]) > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_autoscaler_and_network_policy_fit_together(overlay: str) -> None:
    docs = rendered(overlay)
    svc = one(docs, "Service", "locust-master")
    assert {p["port"] for p in svc["spec"]["ports"]} == {8089, 5557} and svc["spec"]["type"] == "ClusterIP"
    master = next(d for d in docs if d["kind"] in ("Deployment", "Job") and "--master" in container(d)["args"])
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()  # the Service reaches the master, Deployment or Job
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "locust-worker"}
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    worker_labels = one(docs, "Deployment", "locust-worker")["spec"]["template"]["metadata"]["labels"]
    rules = {r["ports"][0]["port"]: r["from"][0]["podSelector"] for r in policy["spec"]["ingress"]}
    assert rules[5557]["matchLabels"].items() <= worker_labels.items() and rules[5557]["matchLabels"]
    assert rules[5557]["matchLabels"]["app.kubernetes.io/component"] == "worker"  # only workers reach 5557


def test_headless_variant_runs_the_master_as_a_job_with_results() -> None:
    docs = rendered("headless")
    assert not [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "locust-master"]
    job = one(docs, "Job", "locust-headless")
    assert job["spec"]["backoffLimit"] == 0 and pod_spec(job)["restartPolicy"] == "Never"
    c = container(job)
    args = c["args"]
    for flag in ("--headless", "--expect-workers", "--expect-workers-max-wait", "-t", "--results-dir"):
        assert flag in args, flag
    assert "loadgen k8s summarize /results" in c["command"][2]  # the JSON summary goes to stdout
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert mounts["results"] == "/results"
    claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
    assert one(docs, "PersistentVolumeClaim", claim)
    assert all(a == "/results" or a.startswith("/results/") for a in args if a.startswith("/results"))


def test_image_override_reaches_every_loadgen_container() -> None:
    docs = rendered("headless", image="ghcr.io/acme/milvus-loadgen:1.2.3")
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in pod_spec(d)["containers"] + pod_spec(d).get("initContainers", [])
    }
    assert images == {"ghcr.io/acme/milvus-loadgen:1.2.3"}
    assert one(docs, "Milvus")["spec"]["components"]["image"].startswith("milvusdb/milvus:")


def test_dockerfile_is_pinned_non_root_and_uses_the_lock() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?$", text, re.M), "base not pinned"
    assert re.search(rf"^USER {LOADGEN_USER}:{LOADGEN_USER}$", text, re.M)
    assert "--constraint constraints.txt" in text
    # "the same pins": every exact pin of the runtime dependencies is the lock's pin
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    lock = {k.lower().replace("_", "-"): v for k, v in lock.items()}
    pinned = [d.split("==") for d in deps if "==" in d]
    assert pinned
    for name, version in pinned:
        assert lock[name.lower().replace("_", "-")] == version, name


def test_cli_apply_sends_the_token_only_through_stdin_and_bad_input_is_one_line() -> None:
    token = "root:SuperSecret-k8s-test"
    proc = run_cli(
        "k8s", "apply", "--overlay", "headless", "--dry-run", "--kubectl", kubectl(),  # ours, not one on PATH
        env={"LOADGEN_MILVUS_TOKEN": token},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "kubectl apply -f -  < rendered headless manifests",
        "kubectl apply -f -  < Secret loadgen-milvus (token from LOADGEN_MILVUS_TOKEN, not shown)",
    ]
    assert token not in proc.stdout + proc.stderr
    down = run_cli("k8s", "down", "--dry-run", "--kubectl", kubectl())
    assert down.returncode == 0 and down.stdout.splitlines() == [
        "kubectl delete -f - --ignore-not-found  < rendered default manifests, without the Namespace",
        "kubectl delete secret loadgen-milvus -n loadgen --ignore-not-found",
    ]
    scale = run_cli("k8s", "scale", "--workers", "6", "--dry-run")
    assert scale.returncode == 0
    assert scale.stdout.splitlines()[0].startswith("kubectl patch hpa locust-worker -n loadgen --type merge -p")
    assert '"minReplicas": 6' in scale.stdout and "--replicas=6" in scale.stdout
    for args, message in [
        (["k8s", "scale", "--workers", "0"], "--workers must be at least 1"),
        (["k8s", "render", "--overlay", "nope"], "invalid choice: 'nope'"),
        (["k8s", "results", "--log", "/nonexistent/job.log"], "--log /nonexistent/job.log: no such file"),
    ]:
        bad = run_cli(*args)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("loadgen: error: "), bad.stderr
        assert message in lines[0]


def test_without_milvus_leaves_out_only_the_milvus_resource() -> None:
    """For a Milvus installed with the Helm chart (k8s/milvus/helm-values.yaml) instead of the operator."""
    text = k8s.render(k8s.K8S_DIR, "perf", kubectl=kubectl(), without_milvus=True)
    kinds = [d["kind"] for d in yaml.safe_load_all(text) if d]
    assert "Milvus" not in kinds
    assert sorted([*kinds, "Milvus"]) == sorted(d["kind"] for d in rendered("perf"))


def test_without_kubectl_on_path_render_uses_the_cached_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI's clean machine: no kubectl installed. Rendering still works; cluster commands say what is missing."""
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_kubectl(None, fetch=True) == kubectl()
    with pytest.raises(LoadgenError, match="kubectl not found"):
        find_kubectl(None, fetch=False)


def test_down_leaves_the_namespace_but_not_our_milvus() -> None:
    """`down` deletes what we created; the namespace may hold what we did not (a Helm-installed Milvus)."""
    full = rendered("default")
    kept = [
        d["kind"]
        for d in yaml.safe_load_all(
            k8s.without_kinds(k8s.render(k8s.K8S_DIR, "default", kubectl=kubectl()), {"Namespace"})
        )
        if d
    ]
    assert "Namespace" not in kept and "Milvus" in kept and len(kept) == len(full) - 1
