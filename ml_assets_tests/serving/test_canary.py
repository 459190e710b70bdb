"""The servable gate over a real MLflow store and a real fresh-process canary: it fails a model that
is really too slow, and passes a good model while the machine is kept busy."""

import os
import subprocess
import sys
from contextlib import contextmanager

import cloudpickle
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.core.gates import latency_gate
from ml_assets.core.training import build_pipeline
from ml_assets.serving.canary import run_canary
from ml_assets_tests.core.churn_data import churn_frames
from ml_assets_tests.registered import raw_records, register
from ml_assets_tests.serving import slow_model

RECORDS = raw_records(200)


@contextmanager
def busy_machine(per_core: int = 2):
    """Two CPU-bound processes per core for the duration of the block."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(per_core * os.cpu_count())]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@pytest.fixture(scope="module")
def slow_version(registry):
    features, labels = churn_frames(days=2, rows=200)
    frame = features.merge(labels, on=["customer_id", "snapshot_date"])
    pipeline = build_pipeline(CHURN, slow_model.SlowClassifier(0.1)).fit(frame[CHURN.feature_columns],
                                                                         frame["churned"])
    cloudpickle.register_pickle_by_value(slow_model)  # the artifact carries the class: loadable anywhere
    try:
        return register(pipeline)
    finally:
        cloudpickle.unregister_pickle_by_value(slow_model)


def test_a_model_that_is_really_too_slow_fails_the_gate_on_an_idle_machine(registry, slow_version, tmp_path):
    report = run_canary("churn_model", slow_version, RECORDS, registry["uri"], tmp_path)
    gate = latency_gate(report, CHURN.gate.latency_budget_ms)
    assert "error" not in report, report
    assert not gate.passed and "p99 CPU time per single-record prediction" in gate.message
    assert report["cpu_p50_ms"] >= 90  # ~100 ms of CPU per call, whatever the wall clock said
    assert report["timed_calls"] <= 2 * 40  # stopped after two windows: judging it took seconds, not minutes


def test_a_good_model_passes_the_gate_while_the_machine_is_busy(registry, tmp_path):
    with busy_machine():
        report = run_canary("churn_model", registry["v1"], RECORDS, registry["uri"], tmp_path)
    gate = latency_gate(report, CHURN.gate.latency_budget_ms)
    assert gate.passed, gate.message
    assert report["windows"] >= 2 and {"p50_ms", "p99_ms"} <= set(gate.values)  # wall clock kept as metadata
