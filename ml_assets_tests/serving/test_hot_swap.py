"""Following the registry: hot swap, shadow scoring, degraded health, no champion."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import httpx
import pytest

from ml_assets.mlflow.registry import CHALLENGER, client, promote
from ml_assets.serving.predlog import read_log
from ml_assets_tests.registered import raw_records
from ml_assets_tests.serving.conftest import NAME, free_port, running

RECORD = raw_records(1)[0]


def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_promotion_is_picked_up_without_a_restart_and_no_request_fails(config, registry):
    statuses, versions, stop = [], [], threading.Event()
    with running(config) as http:
        def hammer():
            while not stop.is_set():
                response = http.post("/predict", json=RECORD)
                statuses.append(response.status_code)
                versions.append(response.json().get("model_version"))
        thread = threading.Thread(target=hammer)
        thread.start()
        time.sleep(0.3)
        promote(client(registry["uri"]), NAME, registry["v2"])
        _wait(lambda: http.get("/health").json()["champion"]["version"] == registry["v2"], what="hot swap")
        time.sleep(0.3)
        stop.set()
        thread.join()
        metrics = http.get("/metrics").text
    assert set(statuses) == {200}
    assert set(versions) == {registry["v1"], registry["v2"]} and versions[-1] == registry["v2"]
    swapped = versions.index(registry["v2"])
    assert set(versions[swapped:]) == {registry["v2"]}  # atomic: never back to the old model
    assert f'ml_assets_model_version{{model="{NAME}"}} {float(registry["v2"])}' in metrics


def test_shadow_mode_scores_the_challenger_and_logs_both(config, registry):
    client(registry["uri"]).set_registered_model_alias(NAME, CHALLENGER, registry["v2"])
    with running(replace(config, shadow=True)) as http:
        answer = http.post("/predict", json=RECORD).json()
        health = http.get("/health").json()
    assert answer["model_version"] == registry["v1"]  # the answer is always the champion's
    assert health["shadow"]["version"] == registry["v2"]
    log = read_log(config.log_dir)
    assert list(log["shadow_version"]) == [registry["v2"]]
    assert log["shadow_score"].notna().all() and (log["shadow_score"] != log["score"]).all()


def test_no_champion_yet_is_503_not_500(config, registry, tmp_path, mlflow_template):
    from ml_assets_tests.conftest import mlflow_env

    with mlflow_env(tmp_path / "empty", mlflow_template) as empty, running(replace(config, tracking_uri=empty, problem_ref="ml_examples.churn.problem:CHURN")) as http:
        health, predict = http.get("/health"), http.post("/predict", json=RECORD)
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert predict.status_code == 503 and "no model" in predict.json()["error"]


@pytest.fixture
def mlflow_server(registry):
    """A real MLflow tracking server over the test registry, which the test can stop and restart."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", registry["uri"], "--workers", "1"]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    def start():
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        _wait(lambda: _up(port), timeout=60, what="mlflow server")
        return process

    state = {"process": start(), "start": start, "url": f"http://127.0.0.1:{port}"}
    yield state
    os.killpg(state["process"].pid, signal.SIGKILL)
    state["process"].wait()


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_unreachable_registry_degrades_health_but_keeps_serving(config, registry, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # what `ml-assets serve` sets
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with running(replace(config, tracking_uri=mlflow_server["url"])) as http:
        assert http.get("/health").json()["status"] == "ok"
        os.killpg(mlflow_server["process"].pid, signal.SIGKILL)
        mlflow_server["process"].wait()
        _wait(lambda: http.get("/health").json()["status"] == "degraded", what="degraded health")
        health = http.get("/health")
        answer = http.post("/predict", json=RECORD)
        assert health.status_code == 200 and health.json()["champion"]["degraded"] == "the model registry cannot be read"
        assert answer.status_code == 200 and answer.json()["model_version"] == registry["v1"]
        assert "ml_assets_degraded 1.0" in http.get("/metrics").text
        mlflow_server["process"] = mlflow_server["start"]()
        _wait(lambda: http.get("/health").json()["status"] == "ok", timeout=30, what="recovery")
