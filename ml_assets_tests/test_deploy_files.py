"""The files for running beyond this machine (deploy/docker, deploy/helm, deploy/k8s), checked as far
as this machine can: every command and module they name exists, the values parse and agree with
each other, and the service starts with exactly the image's command line and health check."""

import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from ml_assets.mlflow.registry import CHAMPION, client
from ml_assets_tests.registered import fit_churn, register

ROOT = Path(__file__).resolve().parents[1]
DOCKER, BIN = ROOT / "deploy" / "docker", Path(sys.executable).parent


def dockerfile(name: str) -> dict:
    """Instruction -> list of arguments (JSON-form CMD/HEALTHCHECK decoded), continuation lines joined."""
    text = (DOCKER / name).read_text().replace("\\\n", " ")
    out: dict[str, list] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            out.setdefault(instruction, []).append(rest.strip())
    return out


def exec_form(text: str) -> list[str]:
    return json.loads(text[text.index("["):])


def env_of(image: dict) -> dict[str, str]:
    return dict(pair.split("=", 1) for line in image.get("ENV", []) for pair in shlex.split(line))


@pytest.mark.parametrize("name", ["code-location.Dockerfile", "service.Dockerfile"])
def test_images_install_the_pinned_set_as_a_non_root_user(name):
    image = dockerfile(name)
    assert any("-c constraints.txt" in run for run in image["RUN"]), "the image must use the same pins"
    assert image["USER"] == ["10001"]
    for copy in image["COPY"]:
        for source in shlex.split(copy)[:-1]:
            assert (ROOT / source).exists(), f"{name} copies {source}, which is not in the repository"
    assert exec_form(image["CMD"][0])[0] in ("dagster", "ml-assets")
    assert image["HEALTHCHECK"]


def test_the_code_location_image_serves_the_definitions_the_chart_names():
    image = dockerfile("code-location.Dockerfile")
    command = exec_form(image["CMD"][0])
    module = command[command.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert str(deployment["port"]) == command[command.index("-p") + 1] == image["EXPOSE"][0]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    for cmd in (command[:3], exec_form(image["HEALTHCHECK"][0])[:3]):  # `dagster api grpc`, `... grpc-health-check`
        done = subprocess.run([str(BIN / cmd[0]), *cmd[1:], "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr


def test_the_kubernetes_manifests_agree_with_the_service_image_and_app():
    from ml_assets.serving.app import ServiceConfig, create_app

    docs = {doc["kind"]: doc for doc in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "scoring-service.yaml").read_text())}
    image = dockerfile("service.Dockerfile")
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert str(container["ports"][0]["containerPort"]) == env_of(image)["ML_ASSETS_SERVE_PORT"] == image["EXPOSE"][0]
    assert "command" not in container and "args" not in container  # the image's own command line
    assert str(pod["securityContext"]["runAsUser"]) == image["USER"][0]
    routes = {route.path for route in create_app(ServiceConfig(problem="churn", problem_ref="ml_examples.churn.problem:CHURN")).routes}
    assert container["readinessProbe"]["httpGet"]["path"] in routes
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    mount = container["volumeMounts"][0]["mountPath"]
    assert mount == f"{env_of(image)['ML_ASSETS_HOME']}/data/prediction_log"  # where the service logs by default


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_service_starts_with_exactly_the_image_command_and_its_health_check_tracks_it(tmp_path, fresh_mlflow):
    version = register(fit_churn())
    client().set_registered_model_alias("churn_model", CHAMPION, version)
    image = dockerfile("service.Dockerfile")
    command, health = exec_form(image["CMD"][0]), exec_form(image["HEALTHCHECK"][0])
    port = _free_port()
    # The image's environment, except that a test listens on loopback only, on a free port.
    env = {**os.environ, **env_of(image), "ML_ASSETS_HOME": str(tmp_path), "ML_ASSETS_SERVE_HOST": "127.0.0.1",
           "ML_ASSETS_SERVE_PORT": str(port)}
    env.pop("ML_ASSETS_DATA_DIR", None)

    def healthy() -> int:
        return subprocess.run([str(BIN / health[0]), *health[1:]], env=env, capture_output=True, timeout=60).returncode

    assert healthy() != 0  # nothing listens yet
    service = subprocess.Popen([str(BIN / command[0]), *command[1:]], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert service.poll() is None, service.stderr.read().decode()[-3000:]
            time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["champion"]["version"] == version
        assert healthy() == 0
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=60)
    assert healthy() != 0
