"""charts/yushan rendered by real Helm: lint, Kubernetes 1.32 schemas, security and RBAC.

Each values file (the defaults and ``values-full.yaml``, which switches every option on) is
rendered once per module. Objects of the Kubernetes API are validated with kubernetes-validate
(strict, so unknown fields fail too); the prometheus-operator CRDs (ServiceMonitor,
PrometheusRule) are not in those schemas, so their shape is checked by the tests below instead.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.chart.rendering import (
    CHART,
    FULL_VALUES,
    KUBERNETES_VERSION,
    NAMESPACE,
    Manifest,
    Rendering,
    containers,
    lint,
    load_values,
    pod_specs,
    render,
)

MONITORING_CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
ALWAYS_RENDERED = {
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "Deployment",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
}
OPTIONAL = {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget"}
FEATURE_SWITCHES = (
    "serviceMonitor",
    "prometheusRule",
    "dashboards",
    "networkPolicy",
    "podDisruptionBudget",
)


@pytest.fixture(scope="module")
def default() -> Rendering:
    return render({})


@pytest.fixture(scope="module")
def full() -> Rendering:
    return render(load_values(FULL_VALUES))


@pytest.fixture(scope="module")
def switched_on() -> Rendering:
    """Every optional object enabled, everything else at its default."""
    return render({feature: {"enabled": True} for feature in FEATURE_SWITCHES})


@pytest.fixture(scope="module", params=["default", "full", "switched_on"])
def rendering(request: pytest.FixtureRequest) -> Rendering:
    fixture: Rendering = request.getfixturevalue(request.param)
    return fixture


def _secret_ref(container: Manifest, env_name: str) -> dict[str, str]:
    (entry,) = [e for e in container["env"] if e["name"] == env_name]
    ref: dict[str, str] = entry["valueFrom"]["secretKeyRef"]
    return ref


# --- helm and the Kubernetes schemas --------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [{}, load_values(FULL_VALUES), {feature: {"enabled": True} for feature in FEATURE_SWITCHES}],
    ids=["default", "full", "switched_on"],
)
def test_helm_lint_is_clean(values: dict[str, Any]) -> None:
    report = lint(values)

    assert report["total_charts_linted"] == 1
    assert report["messages"] == []
    assert report["errors"] == []


def test_every_kubernetes_object_validates_against_the_1_32_schemas(rendering: Rendering) -> None:
    validated = 0
    for manifest in rendering.manifests:
        if manifest["kind"] in MONITORING_CRD_KINDS:
            continue
        schema_version = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert schema_version == "1.32", manifest["kind"]
        validated += 1

    assert validated >= len(ALWAYS_RENDERED)


def test_schema_validation_rejects_an_unknown_field(default: Rendering) -> None:
    broken = json.loads(json.dumps(default.named("Service", "yushan-api")))
    broken["spec"]["portz"] = []

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_defaults_render_the_core_objects_and_no_optional_ones(default: Rendering) -> None:
    assert default.kinds() == ALWAYS_RENDERED
    assert not default.kinds() & OPTIONAL


def test_feature_switches_add_the_optional_objects(switched_on: Rendering) -> None:
    assert switched_on.kinds() == ALWAYS_RENDERED | OPTIONAL
    assert len(switched_on.of_kind("NetworkPolicy")) == 2
    assert len(switched_on.of_kind("PodDisruptionBudget")) == 2
    assert switched_on.named("ConfigMap", "yushan-dashboards")["metadata"]["namespace"] == (
        NAMESPACE
    )


def test_full_values_render_every_optional_object(full: Rendering) -> None:
    # Both secrets are existing ones, so the chart creates none.
    assert full.kinds() == (ALWAYS_RENDERED - {"Secret"}) | OPTIONAL


# --- workloads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values_file", "api_replicas", "scheduler_replicas"),
    [(None, 2, 2), (FULL_VALUES, 3, 2)],
    ids=["default", "full"],
)
def test_replicas(values_file: Any, api_replicas: int, scheduler_replicas: int) -> None:
    rendered = render(load_values(values_file))

    assert rendered.named("Deployment", "yushan-api")["spec"]["replicas"] == api_replicas
    assert (
        rendered.named("Deployment", "yushan-scheduler")["spec"]["replicas"] == scheduler_replicas
    )


def test_commands_ports_and_probes(default: Rendering) -> None:
    api = default.named("Deployment", "yushan-api")["spec"]["template"]["spec"]["containers"][0]
    scheduler = default.named("Deployment", "yushan-scheduler")["spec"]["template"]["spec"][
        "containers"
    ][0]

    assert api["command"] == ["yushan", "api", "--host", "0.0.0.0", "--port", "8080"]
    assert api["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert scheduler["command"] == ["yushan", "scheduler"]
    assert scheduler["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert scheduler["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_pods_run_restricted(rendering: Rendering) -> None:
    for name, spec in pod_specs(rendering):
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == 10001, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
    for name, container in containers(rendering):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
        assert "memory" in container["resources"]["limits"], name
        assert {"livenessProbe", "readinessProbe"} <= set(container), name


def test_default_secret_holds_the_database_url_and_a_generated_token(default: Rendering) -> None:
    data = default.named("Secret", "yushan-secrets")["data"]
    api = default.named("Deployment", "yushan-api")["spec"]["template"]["spec"]["containers"][0]

    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    assert base64.b64decode(data["database-url"]).decode() == chart_defaults["database"]["url"]
    assert len(base64.b64decode(data["bootstrap-token"])) == 40
    assert _secret_ref(api, "YUSHAN_DATABASE_URL") == {
        "name": "yushan-secrets",
        "key": "database-url",
    }


def test_existing_secrets_are_referenced_instead_of_created(full: Rendering) -> None:
    api = full.named("Deployment", "yushan-api")["spec"]["template"]["spec"]["containers"][0]

    for name, container in containers(full):
        assert _secret_ref(container, "YUSHAN_DATABASE_URL") == {
            "name": "yushan-database",
            "key": "url",
        }, name
    assert _secret_ref(api, "YUSHAN_BOOTSTRAP_TOKEN") == {
        "name": "yushan-bootstrap",
        "key": "token",
    }


def test_only_the_api_receives_the_bootstrap_token(rendering: Rendering) -> None:
    env_names = {
        name: {entry["name"] for entry in container["env"]}
        for name, container in containers(rendering)
    }

    assert "YUSHAN_BOOTSTRAP_TOKEN" in env_names["yushan-api/api"]
    assert "YUSHAN_BOOTSTRAP_TOKEN" not in env_names["yushan-scheduler/scheduler"]
    assert all("YUSHAN_DATABASE_URL" in names for names in env_names.values())


def test_configmap_carries_settings_and_the_lease_name(full: Rendering) -> None:
    data = full.named("ConfigMap", "yushan")["data"]

    assert data["YUSHAN_TENANT_NAMESPACE_PREFIX"] == "lab-"
    assert data["YUSHAN_LEADER_ELECTION_LEASE_NAME"] == "yushan-leader"
    assert data["YUSHAN_LOG_FORMAT"] == "text"
    for _, container in containers(full):
        assert container["envFrom"] == [{"configMapRef": {"name": "yushan"}}]


def test_full_values_reach_the_pods(full: Rendering) -> None:
    api = full.named("Deployment", "yushan-api")["spec"]["template"]
    container = api["spec"]["containers"][0]

    assert container["image"] == "registry.example.com/yushan:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert api["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert api["spec"]["serviceAccountName"] == "yushan-controller"
    assert api["metadata"]["annotations"]["example.com/team"] == "platform"
    assert "nodeAffinity" in api["spec"]["affinity"]
    assert api["spec"]["tolerations"][0]["key"] == "node-role.kubernetes.io/control-plane"
    assert full.named("Service", "yushan-api")["spec"]["type"] == "LoadBalancer"


# --- RBAC -----------------------------------------------------------------------------------


def _rules(rendering: Rendering) -> list[tuple[str, dict[str, Any]]]:
    return [
        (role["metadata"]["name"], rule)
        for kind in ("ClusterRole", "Role")
        for role in rendering.of_kind(kind)
        for rule in role["rules"]
    ]


def test_rbac_never_uses_wildcards(rendering: Rendering) -> None:
    rules = _rules(rendering)

    assert rules
    for name, rule in rules:
        for field in ("verbs", "resources", "apiGroups"):
            assert "*" not in rule[field], (name, field)


def _grants(rendering: Rendering) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for _, rule in _rules(rendering):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


LEAST_PRIVILEGE = {
    ("", "nodes"): {"get", "list", "watch"},
    ("", "pods"): {"create", "get", "list", "watch", "delete"},
    ("", "pods/log"): {"get"},
    ("", "services"): {"create", "get", "list", "delete"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}
"""What the code uses (k8s/client.py, k8s/watcher.py, k8s/leader.py): no pods/binding (the
default scheduler binds), no events."""


@pytest.mark.parametrize(
    ("values_file", "namespace_verbs"),
    [(None, None), (FULL_VALUES, {"get", "create"})],
    ids=["default", "create-namespaces"],
)
def test_rbac_grants_exactly_what_yushan_needs(
    values_file: Any, namespace_verbs: set[str] | None
) -> None:
    expected = dict(LEAST_PRIVILEGE)
    if namespace_verbs:
        expected[("", "namespaces")] = namespace_verbs

    assert _grants(render(load_values(values_file))) == expected


def test_leases_are_only_granted_in_the_release_namespace(default: Rendering) -> None:
    (role,) = default.of_kind("Role")
    cluster_resources = {
        resource
        for cluster_role in default.of_kind("ClusterRole")
        for rule in cluster_role["rules"]
        for resource in rule["resources"]
    }

    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"][0]["resources"] == ["leases"]
    assert "leases" not in cluster_resources


def test_tenant_access_is_cluster_wide_by_default(default: Rendering) -> None:
    binding = default.named("ClusterRoleBinding", "yushan-tenant-workloads")

    assert binding["roleRef"]["name"] == "yushan-tenant-workloads"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "yushan", "namespace": NAMESPACE}
    ]


def test_listed_tenant_namespaces_get_one_role_binding_each(full: Rendering) -> None:
    bindings = [
        b for b in full.of_kind("RoleBinding") if b["roleRef"]["name"] == "yushan-tenant-workloads"
    ]
    cluster_bindings = {b["metadata"]["name"] for b in full.of_kind("ClusterRoleBinding")}

    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["lab-biology", "lab-physics"]
    assert all(b["roleRef"]["kind"] == "ClusterRole" for b in bindings)
    assert "yushan-tenant-workloads" not in cluster_bindings


# --- monitoring objects (CRDs: shape checked here, not by kubernetes-validate) --------------


def test_service_monitor_scrapes_both_processes(full: Rendering) -> None:
    (monitor,) = full.of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        s for s in full.of_kind("Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    service_ports = {port["name"] for s in services for port in s["spec"]["ports"]}

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert {s["metadata"]["name"] for s in services} == {
        "yushan-api",
        "yushan-scheduler-metrics",
    }
    assert service_ports == {"http", "metrics"}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == service_ports
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_prometheus_rule_ships_the_alerts_file(full: Rendering) -> None:
    (rule,) = full.of_kind("PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())

    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == source["groups"]
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"}
        for entry in group["rules"]:
            assert ("alert" in entry) != ("record" in entry)
            assert isinstance(entry["expr"], str)


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(full: Rendering) -> None:
    configmap = full.named("ConfigMap", "yushan-dashboards")
    shipped = json.loads(configmap["data"]["yushan.json"])
    source = json.loads((CHART / "files" / "dashboards" / "yushan.json").read_text())

    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Yushan"}
    assert shipped == source


def test_network_policies_admit_only_the_configured_peers(full: Rendering) -> None:
    api = full.named("NetworkPolicy", "yushan-api")["spec"]["ingress"]
    scheduler = full.named("NetworkPolicy", "yushan-scheduler")["spec"]["ingress"]

    clients = {"kubernetes.io/metadata.name": "ingress-nginx"}
    scrapers = {"kubernetes.io/metadata.name": "monitoring"}

    assert [rule["ports"] for rule in api] == [[{"port": "http", "protocol": "TCP"}]] * 2
    assert [rule["from"][0]["namespaceSelector"]["matchLabels"] for rule in api] == [
        clients,
        scrapers,
    ]
    assert scheduler[0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert scheduler[0]["from"][0]["namespaceSelector"]["matchLabels"] == scrapers


def test_disruption_budgets_select_each_deployment(full: Rendering) -> None:
    for component in ("api", "scheduler"):
        budget = full.named("PodDisruptionBudget", f"yushan-{component}")
        deployment = full.named("Deployment", f"yushan-{component}")

        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_notes_explain_how_to_reach_the_api(default: Rendering, full: Rendering) -> None:
    assert "port-forward svc/yushan-api" in default.notes
    assert "bootstrap-token" in default.notes
    assert "bootstrap-token" not in full.notes
    assert "rbac.tenantNamespaces" in default.notes


def test_the_packaged_chart_ships_alerts_and_dashboard_but_not_their_tests() -> None:
    with helm.Chart.load(CHART) as chart:
        shipped = {f["name"] for f in chart.files}

    assert {"files/alerts.yaml", "files/dashboards/yushan.json"} <= shipped
    assert "files/alerts_test.yaml" not in shipped


def test_metrics_token_reaches_both_processes_and_the_service_monitor(full: Rendering) -> None:
    for deployment in full.of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert _secret_ref(container, "YUSHAN_METRICS_TOKEN") == {
            "name": "yushan-metrics",
            "key": "token",
        }
    (monitor,) = full.of_kind("ServiceMonitor")
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["authorization"] == {
            "type": "Bearer",
            "credentials": {"name": "yushan-metrics", "key": "token"},
        }


def test_without_a_metrics_token_metrics_stay_open(default: Rendering) -> None:
    for deployment in default.of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "YUSHAN_METRICS_TOKEN" not in {e["name"] for e in container["env"]}


def test_tenant_namespace_mode_keeps_the_cluster_wide_reads(full: Rendering) -> None:
    """With rbac.tenantNamespaces the scheduler still LISTs and WATCHes pods and LISTs Services
    cluster-wide (watch cache, reconciliation): those reads stay in the cluster-wide role."""
    role = full.named("ClusterRole", "yushan-cluster")
    reads = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {("pods", "list"), ("pods", "watch"), ("services", "list")} <= reads
    assert full.named("ClusterRoleBinding", "yushan-cluster")["roleRef"]["name"] == "yushan-cluster"
