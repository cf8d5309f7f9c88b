"""``loadgen k8s render|apply|down --locustfile PATH``: your own locustfile on the cluster.

The file goes into the ``loadgen-locustfiles`` ConfigMap under its own name (the generator's ``behavior: merge``, so
the name's content hash changes and the pods roll), and every Locust container that ran the built-in
``/etc/loadgen/locustfiles/locustfile.py`` (master Deployment, headless Job, workers) runs it instead. Both are
kustomize edits in a generated overlay on top of the chosen variant; each args patch first tests that the path is
where the manifests had it, so a manifest that moved it fails the render instead of deploying the wrong file.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

from loadgen.errors import LoadgenError

MOUNT = "/etc/loadgen/locustfiles"
BUILT_IN = f"{MOUNT}/locustfile.py"
CONFIGMAP = "loadgen-locustfiles"
MAX_BYTES = 900 * 1024  # a ConfigMap holds at most 1 MiB, the built-in locustfile and metadata included
_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what a ConfigMap key (so the file's name in the mount) may be


def check(path: Path) -> None:
    """What would only fail on the cluster (a pod in CrashLoopBackOff), refused here in one line."""
    where = f"--locustfile {path}"
    if not path.is_file():
        raise LoadgenError(f"{where}: no such file")
    if path.suffix != ".py":
        raise LoadgenError(f"{where}: not a Python file (.py); Locust imports it as a module")
    if not _KEY.fullmatch(path.name):
        raise LoadgenError(f"{where}: a ConfigMap key may hold only letters, digits, '-', '_' and '.'; rename it")
    if path.stat().st_size > MAX_BYTES:
        raise LoadgenError(f"{where}: {path.stat().st_size} bytes is too big for a ConfigMap (under 900 KiB)")
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except UnicodeDecodeError:
        raise LoadgenError(f"{where}: not UTF-8 text") from None
    except SyntaxError as exc:
        raise LoadgenError(f"{where}: invalid Python at line {exc.lineno}: {exc.msg}") from None
    if not _imports_loadgen(tree):
        # the pods set LOCUST_SKIP_MONKEY_PATCH=1: gevent is patched by loadgen.runtime, which such a file never loads
        raise LoadgenError(
            f"{where}: imports nothing from loadgen; the pods rely on its gevent/asyncio policy "
            "(subclass loadgen.VectorStoreUser, or `import loadgen.runtime` first)"
        )


def _imports_loadgen(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "loadgen" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "loadgen":
            return True
    return False


def overlay(path: Path, rendered: str, folder: Path) -> dict[str, Any]:
    """The kustomization entries that ship ``path`` (copied into ``folder``, the generated overlay) and point the
    Locust containers of ``rendered`` (the variant's manifests) at it."""
    import yaml

    shutil.copyfile(path, folder / path.name)
    target = f"{MOUNT}/{path.name}"
    patches = []
    for doc in yaml.safe_load_all(rendered):
        if not doc or doc.get("kind") not in ("Deployment", "Job"):
            continue
        ops: list[dict[str, Any]] = []
        for i, c in enumerate(doc["spec"]["template"]["spec"].get("containers", [])):
            for j, arg in enumerate(c.get("args", [])):
                if arg == BUILT_IN:
                    where = f"/spec/template/spec/containers/{i}/args/{j}"
                    ops += [
                        {"op": "test", "path": where, "value": arg},
                        {"op": "replace", "path": where, "value": target},
                    ]
        if ops:
            meta = doc["metadata"]
            patches.append({"target": {"kind": doc["kind"], "name": meta["name"]}, "patch": json.dumps(ops)})
    if not patches:
        raise LoadgenError(f"no Locust container in the manifests runs {BUILT_IN}: nothing to point at {path.name}")
    generator = {"name": CONFIGMAP, "behavior": "merge", "files": [path.name]}
    return {"configMapGenerator": [generator], "patches": patches}
