"""deploy/kubernetes/hksv-sidecar.yaml: every object valid against the Kubernetes API schemas
(kubernetes-validate, which bundles them: nothing is downloaded), in strict mode (no unknown
field), and what docs/scaling.md promises of it: host networking, one pod per node, each pod's
cameras from its own ConfigMap (a configuration the sidecar itself accepts), the state on a
persistent volume, ``/healthz`` as the liveness and readiness probes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes

from sidecar.config import build_config
from sidecar.config_env import expand_env

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kubernetes" / "hksv-sidecar.yaml"
# The oldest Kubernetes minor still maintained upstream when this was written, and the newest the
# validator bundles.
VERSIONS = ("1.33.0", kubernetes.latest_version())


def objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def one(kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects() if o["kind"] == kind]
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_for_the_kubernetes_api(version: str) -> None:
    docs = objects()
    assert {o["kind"] for o in docs} == {"Service", "StatefulSet", "ConfigMap"}
    for doc in docs:
        kubernetes.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_the_validator_catches_what_it_is_here_to_catch() -> None:
    bad = one("StatefulSet")
    bad["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    with pytest.raises(kubernetes.ValidationError):
        kubernetes.validate(bad, VERSIONS[-1], strict=True)
    unknown = one("StatefulSet")
    unknown["spec"]["template"]["spec"]["hostNetworking"] = True
    with pytest.raises(kubernetes.ValidationError):
        kubernetes.validate(unknown, VERSIONS[-1], strict=True)


def test_one_pod_per_node_on_the_host_network_with_its_state_on_a_persistent_volume() -> None:
    sts = one("StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    (rule,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    assert rule["labelSelector"]["matchLabels"] == sts["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == "/data"  # the image's state directory
    assert pod["securityContext"]["runAsUser"] == 10001 == pod["securityContext"]["fsGroup"]  # the image's user
    assert one("Service")["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == one("Service")["metadata"][
        "name"]


def test_healthz_is_the_liveness_and_the_readiness_probe_on_the_sidecars_http_port() -> None:
    (container,) = one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports[get["port"]] == int(env["HKSV_HTTP_PORT"])
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 300  # a camera's outage is not the pod's


def test_each_pod_reads_its_own_configmap_and_each_is_a_configuration_the_sidecar_accepts() -> None:
    sts = one("StatefulSet")
    name, replicas = sts["metadata"]["name"], sts["spec"]["replicas"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["--config", "/config/$(POD_NAME).yaml"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    projected = {s["configMap"]["name"]: s["configMap"]["items"] for s in volume["projected"]["sources"]}
    pods = [f"{name}-{i}" for i in range(replicas)]
    assert sorted(projected) == pods  # one ConfigMap per pod, named after it...
    for pod_name, items in projected.items():
        assert items == [{"key": "config.yaml", "path": f"{pod_name}.yaml"}]  # ...read as /config/<pod>.yaml
    maps = {o["metadata"]["name"]: o["data"]["config.yaml"] for o in objects() if o["kind"] == "ConfigMap"}
    assert sorted(maps) == pods
    for text in maps.values():
        names = set(re.findall(r"\$\{(\w+)\}", text))  # secrets come from the environment (the Secret)
        config = build_config(expand_env(yaml.safe_load(text), {n: "secret" for n in names}))
        assert config.cameras
