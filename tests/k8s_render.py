"""Helpers for the Kubernetes tests: render the manifests with a real kubectl from PyPI, and find pods' containers.

The kubectl comes from ``loadgen.cli.k8s_tools.cached_kubectl`` (fetched once into ~/.cache/milvus-loadgen/tools), never
from PATH: CI's clean machine has no kubectl, so a test that passed here only because one was installed would lie.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from loadgen.cli import k8s
from loadgen.cli.k8s_tools import cached_kubectl

OVERLAYS = sorted(k8s.OVERLAYS)


@cache
def kubectl() -> str:
    return str(cached_kubectl())


@cache
def rendered_text(overlay: str, image: str | None = None) -> str:
    return k8s.render(k8s.K8S_DIR, overlay, image=image, kubectl=kubectl())


def rendered(overlay: str, image: str | None = None) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered_text(overlay, image)) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container(obj: dict[str, Any], name: str = "locust", *, init: bool = False) -> dict[str, Any]:
    items = pod_spec(obj)["initContainers" if init else "containers"]
    return next(c for c in items if c["name"] == name)


def locustfiles(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The ConfigMap the pods mount at /etc/loadgen/locustfiles: file name -> content."""
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("loadgen-locustfiles")]
    assert len(cms) == 1
    return dict(cms[0]["data"])


def options(docs: list[dict[str, Any]]) -> dict[str, str]:
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("loadgen-options")]
    assert len(cms) == 1
    return dict(cms[0]["data"])
