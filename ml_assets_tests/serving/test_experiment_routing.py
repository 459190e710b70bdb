"""A running service routes an online experiment from the registry record, without a restart: the
sticky arm of each entity, every log row and metric series naming its arm and model version, a
challenger that fails answered for by the champion, and the same arms in another process."""

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from ml_assets.core import guardrails
from ml_assets.core.experiments import CHALLENGER_ARM, arm_of
from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import client
from ml_assets.serving.predlog import read_log
from ml_assets_tests.registered import Broken, broken_churn, raw_records, register
from ml_assets_tests.serving.conftest import NAME, free_port, running

RECORDS = raw_records(120)


def _until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the service did not follow the registry in time"
        time.sleep(0.1)


def _versions(http: httpx.Client) -> dict[str, str]:
    return {r["customer_id"]: http.post("/predict", json=r).json()["model_version"] for r in RECORDS}


@pytest.fixture
def experiment(registry, config):
    """An ab experiment v2 vs v1 (50 %), stopped after the test whatever happened."""
    c = client(registry["uri"])
    started = experiments.start(c, NAME, registry["v2"], "ab", 0.5)
    yield started
    experiments.stop(c, NAME, started.id, "test over")


def _expected(experiment, registry) -> dict[str, str]:
    return {r["customer_id"]: registry["v2"] if arm_of(r["customer_id"], experiment.id, 0.5) == CHALLENGER_ARM
            else registry["v1"] for r in RECORDS}


def test_each_entity_is_answered_by_its_arm_and_logged_with_it(registry, config, experiment):
    with running(config) as http:
        _until(lambda: (http.get("/health").json()["experiment"] or {}).get("id") == experiment.id)
        answered = _versions(http)
        assert answered == _expected(experiment, registry)
        assert 30 < sum(v == registry["v2"] for v in answered.values()) < 90  # both arms really used
        batch = http.post("/predict", json={"records": RECORDS[:40]}).json()
        assert {p["customer_id"]: p["model_version"] for p in batch["predictions"]} == \
            {k: v for k, v in answered.items() if k in {r["customer_id"] for r in RECORDS[:40]}}
        families = guardrails.parse(http.get("/metrics").text)
    routed = {labels["arm"]: value for labels, value in families[guardrails.ROUTED]
              if labels["experiment"] == experiment.id}
    assert routed["challenger"] + routed["champion"] == len(RECORDS) + 40
    # v2 is regularised to near-constant scores (C=0.001): the score-shift guardrail sees it, nothing else
    breaches = guardrails.check(families, experiment.id, guardrails.Limits(min_rows=20))
    assert [b.guardrail for b in breaches] == ["score_shift"]
    log = read_log(config.log_dir)
    assert (log["experiment_id"] == experiment.id).all()
    assert (log["model_version"] == np.where(log["arm"] == CHALLENGER_ARM, registry["v2"], registry["v1"])).all()


def test_stop_and_shadow_switch_without_a_restart(registry, config, experiment):
    c = client(registry["uri"])
    with running(config) as http:
        _until(lambda: (http.get("/health").json()["experiment"] or {}).get("id") == experiment.id)
        experiments.stop(c, NAME, experiment.id, "operator")
        _until(lambda: http.get("/health").json()["experiment"] is None)
        assert set(_versions(http).values()) == {registry["v1"]}  # all traffic back on the champion
        shadow = experiments.start(c, NAME, registry["v2"], "shadow", 0.5)
        try:
            _until(lambda: (http.get("/health").json()["experiment"] or {}).get("id") == shadow.id)
            assert set(_versions(http).values()) == {registry["v1"]}  # the challenger only scores
        finally:
            experiments.stop(c, NAME, shadow.id, "test over")
    log = read_log(config.log_dir)
    shadowed = log[log["experiment_id"] == shadow.id]
    assert len(shadowed) == len(RECORDS) and (shadowed["shadow_version"] == registry["v2"]).all()
    assert shadowed["shadow_score"].notna().all() and (shadowed["shadow_score"] != shadowed["score"]).any()


@pytest.mark.parametrize("breaks", ["at load", "on live traffic"])
def test_a_failing_challenger_is_answered_for_by_the_champion_and_trips_the_guardrail(registry, config, breaks):
    c = client(registry["uri"])
    version = register(broken_churn())
    started = experiments.start(c, NAME, version, "ab", 0.5)
    Broken.failing = breaks == "at load"
    try:
        with running(config) as http:
            _until(lambda: (http.get("/health").json()["experiment"] or {}).get("id") == started.id)
            Broken.failing = True
            statuses = {http.post("/predict", json=r).status_code for r in RECORDS}
            answered = _versions(http)
            families = guardrails.parse(http.get("/metrics").text)
            health = http.get("/health").json()
    finally:
        experiments.stop(c, NAME, started.id, "test over")
        Broken.failing = True
    assert statuses == {200} and set(answered.values()) == {registry["v1"]}  # no 5xx: the champion answered
    breaches = guardrails.check(families, started.id, guardrails.Limits())
    assert [b.guardrail for b in breaches] == ["error_rate"] and breaches[0].value == 1.0
    assert health["experiment"]["problem"] == (f"challenger v{version} could not be loaded" if breaks == "at load"
                                               else None)


def test_arms_are_the_same_in_another_process_with_two_workers(registry, experiment, tmp_path):
    """Sticky across processes: a `--workers 2` service started from the CLI answers every entity
    with the version the hash gives (each worker computes it on its own)."""
    port = free_port()
    command = [sys.executable, "-m", "ml_assets.ops.cli", "serve", "--problem", "churn", "--port", str(port),
               "--workers", "2", "--tracking-uri", registry["uri"], "--log-dir", str(tmp_path / "log"),
               "--poll-seconds", "0.5", "--log-level", "warning"]
    service = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          limits=httpx.Limits(max_keepalive_connections=0)) as http:  # spread over both workers
            deadline, routing = time.monotonic() + 180, set()
            while len(routing) < 2:  # both workers answer and route the experiment
                assert service.poll() is None and time.monotonic() < deadline, "service did not start"
                try:
                    health = http.get("/health").json()
                    if (health.get("experiment") or {}).get("id") == experiment.id:
                        routing.add(health["worker_pid"])
                except httpx.HTTPError:
                    time.sleep(0.5)
            assert _versions(http) == _expected(experiment, registry)
    finally:
        os.killpg(service.pid, signal.SIGKILL)
        service.wait()
