"""The promotion gates, pass and fail, as pure functions."""

import numpy as np
import pytest
from ml_examples.bundled import DIABETES, WINE
from ml_examples.churn.problem import CHURN

from ml_assets.core.gates import (
    floor_gate,
    latency_gate,
    prediction_stats,
    regression_gate,
    sanity_gate,
)


@pytest.mark.parametrize(("score", "passed"), [(0.80, True), (0.75, True), (0.7499, False), (float("nan"), False)])
def test_floor(score, passed):
    gate = floor_gate(score, CHURN)
    assert gate.passed is passed and "floor 0.75" in gate.message


def test_no_champion_means_nothing_to_regress_against():
    assert regression_gate(0.6, None, CHURN).passed


@pytest.mark.parametrize(("candidate", "passed"), [(0.84, True), (0.835, True), (0.829, False)])
def test_regression_tolerance_is_the_specs(candidate, passed):
    gate = regression_gate(candidate, {"version": "3", "score": 0.84}, CHURN)  # max_regression 0.01
    assert gate.passed is passed
    assert gate.values["champion_version"] == "3" and gate.values["delta"] == pytest.approx(candidate - 0.84)


def test_a_champion_that_cannot_be_scored_blocks_the_promotion():
    gate = regression_gate(0.9, {"version": "3", "error": "KeyError: 'tenure_months'"}, CHURN)
    assert not gate.passed and "could not be scored" in gate.message


def test_sane_binary_scores_pass():
    rng = np.random.default_rng(0)
    score = rng.uniform(0, 1, 500)
    assert sanity_gate(prediction_stats(score, score > 0.5, "binary"), "binary").passed


@pytest.mark.parametrize(("score", "reason"), [
    (np.r_[np.full(99, 0.3), np.nan], "non-finite"),
    (np.r_[np.linspace(0, 1, 99), 1.2], "outside [0, 1]"),
    (np.full(100, 0.21), "degenerate"),
    (np.array([]), "no predictions"),
])
def test_insane_binary_scores_fail(score, reason):
    gate = sanity_gate(prediction_stats(score, None, "binary"), "binary")
    assert not gate.passed and reason in gate.message


def test_multiclass_predicting_one_class_is_degenerate():
    label = np.zeros(50, dtype=int)
    gate = sanity_gate(prediction_stats(np.full(50, 0.6), label, "multiclass"), WINE.task)
    assert not gate.passed and "single class" in gate.message
    assert sanity_gate(prediction_stats(np.full(50, 0.6), np.arange(50) % 3, "multiclass"), WINE.task).passed


def test_regression_spread_is_judged_against_the_target():
    y = np.linspace(0, 300, 100)
    assert not sanity_gate(prediction_stats(np.full(100, 150.0), None, "regression", y), DIABETES.task).passed
    assert sanity_gate(prediction_stats(y + 5, None, "regression", y), DIABETES.task).passed


def test_latency_budget_and_canary_failures():
    report = {"version": "1", "rows": 200, "load_seconds": 1.0, "non_finite": 0, "windows": 5,
              "cpu_p50_ms": 1.0, "cpu_p99_ms": 2.0, "p50_ms": 3.0, "p99_ms": 9.0}
    assert latency_gate(report, 50).passed
    assert not latency_gate({**report, "cpu_p99_ms": 80.0}, 50).passed
    assert "non-finite" in latency_gate({**report, "non_finite": 3}, 50).message
    failed = latency_gate({"error": "MlflowException: model not found"}, 50)
    assert not failed.passed and "model not found" in failed.message


def test_the_latency_gate_judges_cpu_time_and_keeps_wall_clock_in_the_values():
    busy = {"version": "1", "rows": 200, "load_seconds": 1.0, "non_finite": 0, "windows": 5,
            "cpu_p50_ms": 1.0, "cpu_p99_ms": 2.0, "p50_ms": 30.0, "p99_ms": 87.0}  # a loaded machine
    gate = latency_gate(busy, 50)
    assert gate.passed and "wall-clock p99 87.00 ms" in gate.message
    assert gate.values["p99_ms"] == 87.0 and gate.values["cpu_p99_ms"] == 2.0
