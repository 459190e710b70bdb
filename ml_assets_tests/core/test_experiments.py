"""The pure part of online experiments: sticky assignment, per-row losses, the sequential test."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as m

from ml_assets.core.experiments import (
    CHALLENGER_ARM,
    CONTINUE,
    PROMOTE,
    STOP,
    arm_of,
    bucket,
    decide,
    msprt,
    msprt_paired,
    row_loss,
)
from ml_assets.core.metrics import metric_for_scorer

IDS = [f"C{i:06d}" for i in range(20_000)]


def test_assignment_is_the_same_in_another_process():
    """Sticky across restarts and workers: a fresh interpreter (another hash seed) agrees."""
    code = ("from ml_assets.core.experiments import bucket; "
            "print(','.join(repr(bucket(f'C{i:06d}', 'exp-1')) for i in range(50)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out == ",".join(repr(bucket(i, "exp-1")) for i in IDS[:50])


def test_shares_are_honoured_and_only_grow():
    at_10 = {i for i in IDS if arm_of(i, "exp-1", 0.10) == CHALLENGER_ARM}
    at_50 = {i for i in IDS if arm_of(i, "exp-1", 0.50) == CHALLENGER_ARM}
    assert abs(len(at_10) / len(IDS) - 0.10) < 0.01
    assert abs(len(at_50) / len(IDS) - 0.50) < 0.015
    assert at_10 <= at_50  # raising the share never moves anyone back to the champion
    assert not {i for i in IDS if arm_of(i, "exp-1", 0.0) == CHALLENGER_ARM}
    assert all(arm_of(i, "exp-1", 1.0) == CHALLENGER_ARM for i in IDS[:500])


def test_a_new_experiment_reshuffles_the_arms():
    first = np.array([arm_of(i, "exp-1", 0.5) == CHALLENGER_ARM for i in IDS])
    second = np.array([arm_of(i, "exp-2", 0.5) == CHALLENGER_ARM for i in IDS])
    assert abs((first & second).mean() - 0.25) < 0.015  # independent, not the same half again


@pytest.mark.parametrize("task, scorer", [("binary", "roc_auc"), ("binary", "neg_log_loss"), ("binary", "neg_brier_score"),
                                          ("binary", "accuracy"), ("multiclass", "accuracy"),
                                          ("regression", "neg_root_mean_squared_error"),
                                          ("regression", "neg_mean_absolute_error")])
def test_row_loss_averages_to_the_metric(task, scorer):
    rng = np.random.default_rng(0)
    metric = metric_for_scorer(task, scorer)
    if task == "regression":
        y, out = rng.normal(size=500), rng.normal(size=500)
        expected = m.mean_absolute_error(y, out) if metric.name == "mae" else m.mean_squared_error(y, out)
    elif metric.needs == "label":
        y, out = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
        expected = 1 - m.accuracy_score(y, out)
    else:
        y, out = rng.integers(0, 2, 500), rng.random(500)
        expected = m.brier_score_loss(y, out) if metric.name == "brier" else m.log_loss(y, out)
    assert row_loss(metric, y, out).mean() == pytest.approx(expected)


def test_row_loss_refuses_a_metric_without_a_per_row_form():
    with pytest.raises(ValueError, match="choose a label- or score-based primary metric"):
        row_loss(metric_for_scorer("multiclass", "neg_log_loss"), np.array([0]), np.array([[1.0]]))


def test_interval_crosses_zero_exactly_when_not_significant():
    rng = np.random.default_rng(1)
    for shift in (0.0, 0.01, 0.05, 0.2):
        result = msprt(rng.normal(1, 1, 3000), rng.normal(1 + shift, 1, 3000))
        assert result.significant == (result.lower > 0 or result.upper < 0)
        assert result.lower < result.difference < result.upper


def test_peeking_every_day_keeps_the_error_rate():
    """A/A with 28 looks: a z-test at each look rejects in 29 % of these runs (measured); the mSPRT stays under alpha."""
    rng = np.random.default_rng(7)
    rejected = 0
    for _ in range(300):
        a, b = rng.exponential(0.5, (30, 200)), rng.exponential(0.5, (30, 200))
        rejected += any(msprt(a[:day].ravel(), b[:day].ravel(), alpha=0.05).significant for day in range(3, 31))
    assert rejected / 300 <= 0.05


def test_a_real_difference_is_found_and_signed():
    rng = np.random.default_rng(2)
    champion = rng.exponential(0.50, 20_000)
    assert msprt(champion, rng.exponential(0.45, 20_000)).upper < 0  # challenger better
    assert msprt(champion, rng.exponential(0.55, 20_000)).lower > 0  # challenger worse


def test_decisions():
    rng = np.random.default_rng(3)
    champion = rng.exponential(0.5, 20_000)
    better, worse, same = (msprt(champion, rng.exponential(s, 20_000)) for s in (0.45, 0.55, 0.5))
    assert decide(better, days=10, min_samples=1000, max_days=28).action == PROMOTE
    assert decide(worse, days=10, min_samples=1000, max_days=28).action == STOP
    assert decide(same, days=10, min_samples=1000, max_days=28).action == CONTINUE
    stopped = decide(same, days=28, min_samples=1000, max_days=28)
    assert stopped.action == STOP and "the champion stays" in stopped.reason
    waiting = decide(better, days=10, min_samples=50_000, max_days=28)
    assert waiting.action == CONTINUE and "collecting" in waiting.reason
    assert decide(better, days=28, min_samples=50_000, max_days=28).action == STOP


def _log_losses(rng, noise: float, p, y):
    q = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + rng.normal(0, noise, len(p)))))
    return -np.where(y, np.log(q), np.log1p(-q))


def test_shadow_pairs_are_tighter_than_two_arms():
    """Shadow scores every entity with both models: the entity-to-entity noise cancels."""
    rng = np.random.default_rng(4)
    p = rng.beta(2, 8, 3000)
    y = rng.random(3000) < p
    champion, challenger = _log_losses(rng, 1.0, p, y), _log_losses(rng, 0.7, p, y)
    paired, unpaired = msprt_paired(challenger - champion), msprt(champion, challenger)
    assert paired.difference == pytest.approx(unpaired.difference)
    assert paired.upper - paired.lower < 0.6 * (unpaired.upper - unpaired.lower)
    assert not msprt_paired(champion - champion).significant  # the same model twice decides nothing
