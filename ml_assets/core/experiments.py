"""Online experiments, the pure part: sticky arm assignment and an always-valid sequential test.

An experiment compares the champion with a challenger on live traffic, decided on labels as they
arrive. Two things here must hold whatever process runs them:

- **Assignment is sticky.** An entity's arm is a function of (experiment id, entity id) only: a
  keyed hash, not Python's `hash()` (salted per process) nor pandas' (not promised stable across
  versions). The same customer sees the same arm across restarts, workers and machines, and a new
  experiment id reshuffles everyone, so one unlucky group is not the challenger's every time.
- **Peeking is free.** The decision is re-evaluated every day on all labels so far. A fixed-horizon
  t-test evaluated daily would promote a challenger that is no better far more often than alpha;
  the mixture sequential probability ratio test (mSPRT, Johari, Pekelis & Walsh 2017, "Always
  Valid Inference") keeps its error rate at alpha however often it is looked at. Its confidence
  sequence, not a p-value, carries the decision: promote when the challenger's loss is lower with
  the whole interval below zero, stop when it is above zero.

The test runs on the per-row loss of the problem's primary metric (AUC has no per-row form, so
probability metrics use the log loss, the proper scoring rule that rewards both ranking and
calibration). No Dagster, no MLflow, no I/O.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from ml_assets.core.metrics import LABEL, SCORE, VALUE, Metric

CHAMPION_ARM, CHALLENGER_ARM = "champion", "challenger"
MODES = ("shadow", "canary", "ab")  # shadow: the challenger scores everything, the champion answers
PROMOTE, STOP, CONTINUE = "promote", "stop", "continue"
_EPS = 1e-15  # log loss of a certain, wrong prediction is capped (as scikit-learn clips)


def bucket(entity_id: object, experiment_id: str) -> float:
    """The entity's place in [0, 1) for this experiment: stable across processes and versions."""
    digest = hashlib.blake2b(f"{experiment_id}\x1f{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def arm_of(entity_id: object, experiment_id: str, challenger_share: float) -> str:
    """Which model answers this entity. Shares grow monotonically: raising the share from 10 % to
    50 % moves entities only from champion to challenger, never back."""
    return CHALLENGER_ARM if bucket(entity_id, experiment_id) < challenger_share else CHAMPION_ARM


def row_loss(metric: Metric, y: np.ndarray, output: np.ndarray) -> np.ndarray:
    """The per-row loss behind a primary metric (lower is better), one value per labelled row."""
    y = np.asarray(y)
    if metric.needs == SCORE:
        if metric.name == "brier":
            return (np.asarray(output, dtype=float) - y) ** 2
        p = np.clip(np.asarray(output, dtype=float), _EPS, 1 - _EPS)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if metric.needs == VALUE:
        error = np.asarray(output, dtype=float) - y.astype(float)
        return np.abs(error) if metric.name == "mae" else error**2
    if metric.needs == LABEL:
        return (np.asarray(output) != y).astype(float)
    raise ValueError(f"metric {metric.name!r} needs all class probabilities, which a prediction row does not carry; "
                     "choose a label- or score-based primary metric for online experiments")


@dataclass(frozen=True)
class SequentialResult:
    """The test after n_champion + n_challenger labelled rows. `difference` is the challenger's
    mean loss minus the champion's (negative: the challenger is better); [lower, upper] its
    always-valid confidence interval at level 1 - alpha."""

    n_champion: int
    n_challenger: int
    difference: float
    lower: float
    upper: float
    statistic: float  # log of the mixture likelihood ratio against "no difference"
    boundary: float  # log(1 / alpha): the statistic crosses it exactly when the interval excludes 0

    @property
    def significant(self) -> bool:
        return self.statistic >= self.boundary


def msprt(champion_loss: np.ndarray, challenger_loss: np.ndarray, alpha: float = 0.05,
          mixture_sd: float | None = None) -> SequentialResult:
    """mSPRT with a normal mixture over the difference in mean loss of two independent arms (ab,
    canary: each entity is answered by one model).

    `mixture_sd` (tau) is the spread of effects the test is tuned to detect fastest, in loss units;
    None takes 10 % of the pooled loss standard deviation. The variance of the difference is
    plugged in from the data, which is why decisions wait for a minimum sample (`decide`)."""
    a, b = np.asarray(champion_loss, dtype=float), np.asarray(challenger_loss, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return _mixture(math.nan, math.nan, len(a), len(b), alpha, math.nan)
    tau = mixture_sd if mixture_sd is not None else 0.1 * math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return _mixture(float(b.mean() - a.mean()), a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b),
                    len(a), len(b), alpha, tau)


def msprt_paired(difference: np.ndarray, alpha: float = 0.05, mixture_sd: float | None = None) -> SequentialResult:
    """The same test on paired rows (shadow: both models scored every entity, so each row gives
    challenger loss - champion loss and the entity-to-entity noise cancels)."""
    d = np.asarray(difference, dtype=float)
    if len(d) < 2:
        return _mixture(math.nan, math.nan, len(d), len(d), alpha, math.nan)
    tau = mixture_sd if mixture_sd is not None else 0.1 * d.std(ddof=1)
    return _mixture(float(d.mean()), d.var(ddof=1) / len(d), len(d), len(d), alpha, tau)


def _mixture(difference: float, variance: float, n_a: int, n_b: int, alpha: float, tau: float) -> SequentialResult:
    """Log likelihood ratio of N(difference; 0, V) mixed over effects ~ N(0, tau^2), and the
    interval of effects it does not reject (the confidence sequence)."""
    boundary = math.log(1 / alpha)
    if math.isnan(variance):  # too few rows for a variance
        return SequentialResult(n_a, n_b, difference, -math.inf, math.inf, 0.0, boundary)
    if variance <= 0:  # identical constant losses: nothing to learn from more rows of them
        return SequentialResult(n_a, n_b, difference, difference, difference, math.inf if difference else 0.0, boundary)
    tau2 = max(tau, 1e-12) ** 2
    statistic = float(0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (2 * variance * (variance + tau2)))
    half_width = math.sqrt(2 * variance * (variance + tau2) / tau2
                           * (boundary + 0.5 * math.log((variance + tau2) / variance)))
    return SequentialResult(n_a, n_b, difference, difference - half_width, difference + half_width, statistic, boundary)


@dataclass(frozen=True)
class Decision:
    action: str  # PROMOTE, STOP or CONTINUE
    reason: str
    result: SequentialResult


def decide(result: SequentialResult, days: int, min_samples: int, max_days: int) -> Decision:
    """promote / stop / continue after `days` days of the experiment.

    Nothing is decided before both arms have `min_samples` labelled rows (the plug-in variance is
    unreliable on few rows). A significant difference decides; no difference by `max_days` stops
    the experiment and keeps the champion (a challenger must earn its promotion)."""
    smaller = min(result.n_champion, result.n_challenger)
    interval = f"challenger - champion loss {result.difference:+.4g} [{result.lower:+.4g}, {result.upper:+.4g}]"
    if smaller < min_samples:
        if days >= max_days:
            return Decision(STOP, f"only {smaller} labelled rows in the smaller arm after {days} days "
                                  f"(min {min_samples}); the champion stays", result)
        return Decision(CONTINUE, f"collecting: {smaller} of {min_samples} labelled rows in the smaller arm", result)
    if result.significant and result.upper < 0:
        return Decision(PROMOTE, f"the challenger's loss is lower: {interval}", result)
    if result.significant and result.lower > 0:
        return Decision(STOP, f"the challenger's loss is higher: {interval}", result)
    if days >= max_days:
        return Decision(STOP, f"no significant difference after {days} days (max {max_days}): {interval}; "
                              "the champion stays", result)
    return Decision(CONTINUE, f"not yet significant: {interval}", result)
