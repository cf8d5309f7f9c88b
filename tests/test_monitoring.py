"""k8s/components/monitoring (issue 16): prometheus-operator monitors checked against our schema, the Grafana
dashboard checked against ours, and every panel's query against the metrics the endpoints really expose."""

from __future__ import annotations

import json
import re
import urllib.request

import jsonschema
import pytest
from conftest import ROOT
from k8s_render import container, one, options, rendered

from loadgen.locust.exporter import wire_names
from loadgen.milvus.server import ServerInfo

COMPONENT = ROOT / "k8s" / "components" / "monitoring"
MONITORS_SCHEMA = json.loads((COMPONENT / "monitors.schema.json").read_text())
DASHBOARD_SCHEMA = json.loads((COMPONENT / "grafana-dashboard.schema.json").read_text())
DASHBOARD = json.loads((COMPONENT / "grafana-dashboard.json").read_text())
METRIC = re.compile(r"\b((?:loadgen|milvus|process)_[a-zA-Z0-9_]+)")


def queried() -> set[str]:
    return {m for p in DASHBOARD["panels"] for t in p["targets"] for m in METRIC.findall(t["expr"])}


def test_monitors_match_our_schema_and_reach_the_master_and_milvus() -> None:
    docs = rendered("monitoring")
    monitors = [d for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor")]
    assert {m["metadata"]["name"] for m in monitors} == {"loadgen-master", "loadgen-milvus"}
    for m in monitors:
        jsonschema.validate(m, MONITORS_SCHEMA)
        assert m["metadata"]["namespace"] == "loadgen"
    master = one(docs, "Deployment", "locust-master")
    labels = master["spec"]["template"]["metadata"]["labels"]
    pm = one(docs, "PodMonitor", "loadgen-master")["spec"]
    assert pm["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container(master)["ports"]}
    (endpoint,) = pm["podMetricsEndpoints"]
    assert ports[endpoint["port"]] == int(options(docs)["LOADGEN_PROMETHEUS_PORT"])  # what the master serves on
    policy = one(docs, "NetworkPolicy", "locust-master")
    assert ports["metrics"] in {r["ports"][0]["port"] for r in policy["spec"]["ingress"]}
    milvus = one(docs, "Milvus")
    assert one(docs, "PodMonitor", "loadgen-milvus")["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": milvus["metadata"]["name"]
    }
    assert options(docs)["LOADGEN_MILVUS_METRICS_URL"].startswith(f"http://{milvus['metadata']['name']}-milvus:9091")

    # the monitoring variant is the default one plus monitoring: nothing else moved
    def names(objs: list[dict]) -> set[tuple[str, str]]:  # generated ConfigMaps without their content hash
        return {(d["kind"], re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"])) for d in objs}

    assert names(rendered("default")) <= names(docs)


def test_schema_refuses_a_misspelled_monitor() -> None:
    """The control: our schema does reject what the operator would not understand."""
    pm = json.loads(json.dumps(one(rendered("monitoring"), "PodMonitor", "loadgen-master")))
    pm["spec"]["podMetricEndpoints"] = pm["spec"].pop("podMetricsEndpoints")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(pm, MONITORS_SCHEMA)


def test_dashboard_is_valid_grafana_json_shipped_in_a_configmap() -> None:
    jsonschema.validate(DASHBOARD, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()  # no two panels on the same grid cell
    for p in DASHBOARD["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine
    cm = one(rendered("monitoring"), "ConfigMap", "loadgen-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["grafana-dashboard.json"]) == DASHBOARD
    broken = json.loads(json.dumps(DASHBOARD))
    del broken["panels"][0]["targets"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, DASHBOARD_SCHEMA)


def test_every_loadgen_panel_queries_a_metric_the_master_exposes() -> None:
    ours = {m for m in queried() if m.startswith("loadgen_")}
    assert ours and ours <= wire_names(), ours - wire_names()


@pytest.mark.milvus
def test_every_milvus_panel_queries_a_metric_milvus_exposes(milvus: ServerInfo) -> None:
    text = urllib.request.urlopen(milvus.metrics_url, timeout=5).read().decode()
    exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    theirs = {m for m in queried() if not m.startswith("loadgen_")}
    assert theirs and theirs <= exposed, theirs - exposed
