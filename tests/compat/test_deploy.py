"""The Kubernetes manifests of deploy/k8s: valid against the Kubernetes API's schemas
(kubernetes-validate, from PyPI, with the schemas it ships), and their configuration valid for
the gateway itself (`modgate config check` on each ConfigMap's file, with the Secret's values
mounted where the Deployment mounts them). No cluster runs here; this checks the files."""

import os
import subprocess
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

from conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
# A Kubernetes release the manifests must be valid for (its schemas ship with the package).
VERSION = "1.31.0"


def documents(folder):
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def test_every_manifest_is_valid_for_the_kubernetes_api():
    checked = 0
    for folder in (K8S, K8S / "redis-mode"):
        for path, doc in documents(folder):
            kubernetes_validate.validate(doc, VERSION, strict=True)
            checked += 1
    assert checked >= 9


def test_a_manifest_with_a_mistake_is_refused():
    # The validator is not a formality: a misspelt field fails.
    _, deployment = next((p, d) for p, d in documents(K8S) if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "admin"}}
    try:
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return
    raise AssertionError("a misspelt field passed validation")


def test_each_deployment_probes_the_admin_listener():
    for folder in (K8S, K8S / "redis-mode"):
        kinds = {d["kind"]: d for _, d in documents(folder)}
        assert {"Deployment", "Service", "ConfigMap", "Secret"} <= kinds.keys(), folder
        container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"api": 8080, "admin": 9090}
        for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            assert container[probe]["httpGet"] == {"path": path, "port": "admin"}, probe
        # Loading may take minutes with many stored tables: the startup probe allows it.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_each_configuration_is_valid_with_its_secrets_mounted():
    binary = os.environ.get("MODGATE_BIN", str(ROOT / "target" / "debug" / "modgate"))
    for folder in (K8S, K8S / "redis-mode"):
        kinds = {d["kind"]: d for _, d in documents(folder)}
        deployment = kinds["Deployment"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        with tempfile.TemporaryDirectory() as tmp:
            secrets = Path(tmp) / "secrets"
            secrets.mkdir()
            for key, value in kinds["Secret"]["stringData"].items():
                (secrets / key).write_text(value)
            text = kinds["ConfigMap"]["data"]["modgate.toml"].replace(mounts["secrets"], str(secrets))
            config = Path(tmp) / "modgate.toml"
            config.write_text(text)
            env = {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_")}
            for var in container.get("env", []):
                if var["name"].startswith("MODGATE_"):
                    env[var["name"]] = var["value"].replace(mounts["secrets"], str(secrets))
            out = subprocess.run([binary, "config", "check", "--config", str(config)], env=env, capture_output=True, text=True)
            assert out.returncode == 0, f"{folder}: {out.stdout}{out.stderr}"
            assert "configuration is valid" in out.stdout
