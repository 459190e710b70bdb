"""Guardrails read off the service's per-arm counters, as Prometheus exposes them."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ml_assets.core.guardrails import FAILED, LATENCY, ROUTED, SCORE, Limits, check, parse, quantile

EXP = "churn_model-v2-abc"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
SCORE_BUCKETS = tuple(np.round(np.linspace(0.1, 1.0, 10), 2))


def exposition(rows: int = 1000, failures: int = 0, challenger_ms: float = 2.0, shift: float = 0.0,
               experiment: str = EXP, seed: int = 0) -> str:
    """What a service's /metrics shows after `rows` rows per arm."""
    rng = np.random.default_rng(seed)
    r = CollectorRegistry()
    routed = Counter(ROUTED.removesuffix("_total"), "rows routed", ["experiment", "arm"], registry=r)
    failed = Counter(FAILED.removesuffix("_total"), "challenger failures", ["experiment", "arm"], registry=r)
    latency = Histogram(LATENCY, "model call", ["experiment", "arm"], buckets=LATENCY_BUCKETS, registry=r)
    score = Histogram(SCORE, "scores", ["experiment", "arm"], buckets=SCORE_BUCKETS, registry=r)
    for arm, ms, extra in (("champion", 2.0, 0.0), ("challenger", challenger_ms, shift)):
        routed.labels(experiment, arm).inc(rows)
        for value in rng.gamma(4, ms / 4000, rows - (failures if arm == "challenger" else 0)):
            latency.labels(experiment, arm).observe(value)
        for value in np.clip(rng.beta(2, 8, rows) + extra, 0, 1):
            score.labels(experiment, arm).observe(value)
    if failures:
        failed.labels(experiment, "challenger").inc(failures)
    return generate_latest(r).decode()


def test_a_healthy_challenger_breaches_nothing():
    assert check(parse(exposition()), EXP, Limits()) == []


@pytest.mark.parametrize("kwargs, guardrail", [({"failures": 30}, "error_rate"), ({"challenger_ms": 60.0}, "latency_p99"),
                                                ({"shift": 0.4}, "score_shift")])
def test_each_guardrail_trips_on_its_own(kwargs, guardrail):
    breaches = check(parse(exposition(**kwargs)), EXP, Limits())
    assert [b.guardrail for b in breaches] == [guardrail]
    assert breaches[0].value > breaches[0].limit and breaches[0].message


def test_other_experiments_and_replicas():
    """Counters of an older experiment are ignored; two replicas' counters add up."""
    healthy, broken = exposition(), exposition(failures=300, experiment="old")
    assert check(parse(healthy + broken), EXP, Limits()) == []
    both = {}
    for text in (exposition(rows=600, failures=4), exposition(rows=600, failures=5, seed=1)):
        for name, samples in parse(text).items():
            both.setdefault(name, []).extend(samples)
    assert check(both, EXP, Limits(max_error_rate=0.007))[0].value == pytest.approx(9 / 1200)


def test_few_rows_judge_errors_but_not_latency_or_shift():
    few = parse(exposition(rows=50, challenger_ms=80.0, shift=0.5))
    assert check(few, EXP, Limits(min_rows=200)) == []
    assert [b.guardrail for b in check(parse(exposition(rows=50, failures=5)), EXP, Limits())] == ["error_rate"]


def test_quantile_matches_prometheus_interpolation():
    bounds, cumulative = np.array([0.1, 0.2, np.inf]), np.array([50.0, 100.0, 100.0])
    assert quantile(bounds, cumulative, 0.5) == pytest.approx(0.1)
    assert quantile(bounds, cumulative, 0.75) == pytest.approx(0.15)
    assert quantile(np.array([0.1, np.inf]), np.array([0.0, 10.0]), 0.99) == pytest.approx(0.1)  # all in +Inf
