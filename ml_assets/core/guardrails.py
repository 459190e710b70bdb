"""Guardrails of an online experiment: the challenger arm's health, checked on every sensor tick from
the scoring service's own counters, so a broken challenger is stopped within a tick, not after the
days a statistical decision needs. Pure: parsed metric samples in, verdicts out.

The service exports per arm (serving/metrics.py): requests routed, failures (answered by the
champion instead — a user never sees the challenger's error), model-call latency and the score
histogram. Counters are cumulative since the process started, which is what makes the checks
restart-safe: a rate is read off the totals, never off a sensor's memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

ROUTED = "ml_assets_experiment_routed_total"
FAILED = "ml_assets_experiment_failures_total"
LATENCY = "ml_assets_experiment_model_seconds"
SCORE = "ml_assets_experiment_score"


@dataclass(frozen=True)
class Limits:
    max_error_rate: float = 0.01  # challenger failures / rows routed to it
    max_p99_ms: float = 50.0  # the challenger's model-call p99
    max_score_shift: float = 0.25  # population stability index of its scores vs the champion's
    min_rows: int = 200  # rows routed to the challenger before latency and shift are judged


@dataclass(frozen=True)
class Breach:
    guardrail: str
    value: float
    limit: float
    message: str


def _samples(families: dict[str, list[tuple[dict, float]]], name: str, experiment: str) -> list[tuple[dict, float]]:
    return [(labels, value) for labels, value in families.get(name, []) if labels.get("experiment") == experiment]


def _total(samples: list[tuple[dict, float]], arm: str) -> float:
    return float(sum(value for labels, value in samples if labels.get("arm") == arm))


def _histogram(samples: list[tuple[dict, float]], arm: str) -> tuple[np.ndarray, np.ndarray]:
    """(upper bounds, cumulative counts) of an arm's histogram, summed over processes/replicas."""
    buckets: dict[float, float] = {}
    for labels, value in samples:
        if labels.get("arm") == arm and "le" in labels:
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = np.array(sorted(buckets))
    return bounds, np.array([buckets[b] for b in bounds])


def quantile(bounds: np.ndarray, cumulative: np.ndarray, q: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket that holds the q-th observation."""
    if not len(cumulative) or cumulative[-1] <= 0:
        return float("nan")
    rank = q * cumulative[-1]
    i = int(np.searchsorted(cumulative, rank, side="left"))
    if i >= len(bounds) - 1 and np.isinf(bounds[min(i, len(bounds) - 1)]):
        return float(bounds[-2]) if len(bounds) > 1 else float("nan")  # in +Inf: the highest finite bound
    lower, below = (0.0, 0.0) if i == 0 else (bounds[i - 1], cumulative[i - 1])
    inside = cumulative[i] - below
    return float(lower + (bounds[i] - lower) * ((rank - below) / inside if inside else 1.0))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two histograms' bucket counts (not cumulative)."""
    e = np.maximum(expected / max(expected.sum(), 1), 1e-4)
    a = np.maximum(actual / max(actual.sum(), 1), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def check(families: dict[str, list[tuple[dict, float]]], experiment: str, limits: Limits) -> list[Breach]:
    """Every guardrail the challenger arm of `experiment` breaches now (empty: healthy)."""
    routed = _total(_samples(families, ROUTED, experiment), "challenger")
    failed = _total(_samples(families, FAILED, experiment), "challenger")
    breaches = []
    if routed and failed / routed > limits.max_error_rate:
        breaches.append(Breach("error_rate", failed / routed, limits.max_error_rate,
                               f"challenger failed {failed:.0f} of {routed:.0f} routed rows "
                               f"({failed / routed:.1%} > {limits.max_error_rate:.1%})"))
    if routed - failed < limits.min_rows:
        return breaches
    bounds, cumulative = _histogram(_samples(families, f"{LATENCY}_bucket", experiment), "challenger")
    p99_ms = quantile(bounds, cumulative, 0.99) * 1000
    if p99_ms > limits.max_p99_ms:
        breaches.append(Breach("latency_p99", p99_ms, limits.max_p99_ms,
                               f"challenger model-call p99 {p99_ms:.1f} ms > {limits.max_p99_ms:g} ms"))
    scores = _samples(families, f"{SCORE}_bucket", experiment)
    (_, champion), (_, challenger) = _histogram(scores, "champion"), _histogram(scores, "challenger")
    if len(champion) and len(champion) == len(challenger) and champion[-1] >= limits.min_rows:
        shift = psi(np.diff(champion, prepend=0), np.diff(challenger, prepend=0))
        if shift > limits.max_score_shift:
            breaches.append(Breach("score_shift", shift, limits.max_score_shift,
                                   f"challenger scores shifted vs the champion's: PSI {shift:.3f} > "
                                   f"{limits.max_score_shift:g}"))
    return breaches


def parse(text: str) -> dict[str, list[tuple[dict, float]]]:
    """Prometheus text exposition -> sample name -> [(labels, value)] (several scrapes: concatenate)."""
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out
