"""The promotion gates (in the spirit of TFX's Evaluator "blessing"): pure functions over what the
evaluation measured. A candidate becomes champion only when every gate passes.

Metrics are scikit-learn scorer values, so greater is always better (errors are negated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ml_assets.problem.spec import ProblemSpec


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    values: dict = field(default_factory=dict)


def prediction_stats(score: np.ndarray, label: np.ndarray | None, task: str, y=None) -> dict[str, float]:
    """What the sanity gate looks at: NaNs, range and spread of the candidate's test predictions
    (`score`/`label` as returned by `core.scoring.predict`)."""
    score = np.asarray(score, dtype=float)
    finite = score[np.isfinite(score)]
    stats = {"rows": int(score.size), "non_finite": int(score.size - finite.size),
             "min": float(finite.min()) if finite.size else math.nan,
             "max": float(finite.max()) if finite.size else math.nan,
             "std": float(finite.std()) if finite.size else 0.0}
    if task == "multiclass" and label is not None and len(label):
        _, counts = np.unique(label, return_counts=True)
        stats["predicted_classes"] = int(counts.size)
        stats["top_class_share"] = float(counts.max() / counts.sum())
    if task == "regression" and y is not None:
        stats["target_std"] = float(np.std(y))
    return stats


def floor_gate(score: float, spec: ProblemSpec) -> GateResult:
    """No floor configured: only a finite score is required (no-regression and sanity still apply)."""
    if spec.gate.metric_floor is None:
        passed = bool(np.isfinite(score))
        return GateResult("metric_floor", passed, f"{spec.training.primary_metric} {score:.4f}: "
                          f"{'finite' if passed else 'not finite'}; no floor set (gate.metric_floor)",
                          {"score": score})
    passed = bool(np.isfinite(score) and score >= spec.gate.metric_floor)
    return GateResult("metric_floor", passed,
                      f"{spec.training.primary_metric} {score:.4f} {'>=' if passed else '<'} floor {spec.gate.metric_floor}",
                      {"score": score, "floor": spec.gate.metric_floor})


def regression_gate(candidate: float, champion: dict | None, spec: ProblemSpec) -> GateResult:
    """No regression beyond `spec.gate.max_regression` against the champion scored on the same test split.

    `champion` is None (no champion yet: the gate passes, floor and sanity apply alone) or
    {"version", "score"} / {"version", "error"} from scoring the champion on the candidate's split."""
    if champion is None:
        return GateResult("no_regression", True, "no champion yet: nothing to regress against")
    if "error" in champion:  # fail safe: a champion we cannot compare against blocks, loudly
        return GateResult("no_regression", False,
                          f"champion v{champion['version']} could not be scored on this test split: {champion['error']}")
    delta = candidate - champion["score"]
    passed = bool(np.isfinite(candidate) and delta >= -spec.gate.max_regression)
    return GateResult("no_regression", passed,
                      f"{spec.training.primary_metric} {candidate:.4f} vs champion v{champion['version']} "
                      f"{champion['score']:.4f} (change {delta:+.4f}, tolerance -{spec.gate.max_regression})",
                      {"score": candidate, "champion_score": champion["score"], "delta": delta,
                       "champion_version": champion["version"], "tolerance": spec.gate.max_regression})


def sanity_gate(stats: dict, task: str) -> GateResult:
    """No NaN/inf predictions, probabilities within [0, 1], and not a degenerate (constant) model."""
    problems = []
    if stats["rows"] == 0:
        problems.append("no predictions")
    if stats["non_finite"]:
        problems.append(f"{stats['non_finite']} non-finite predictions")
    if task in ("binary", "multiclass") and not (stats["min"] >= 0.0 and stats["max"] <= 1.0):
        problems.append(f"probabilities outside [0, 1]: {stats['min']:.4g}..{stats['max']:.4g}")
    if task == "binary" and stats["std"] < 1e-3:
        problems.append(f"degenerate: score spread {stats['std']:.2e}")
    if task == "multiclass" and stats.get("predicted_classes", 0) < 2:
        problems.append("degenerate: a single class is predicted for every row")
    if task == "regression" and stats["std"] < 0.01 * stats.get("target_std", 0.0):
        problems.append(f"degenerate: prediction spread {stats['std']:.3g} vs target {stats['target_std']:.3g}")
    return GateResult("prediction_sanity", not problems, "; ".join(problems) or "predictions are sane", stats)


def latency_gate(report: dict, budget_ms: float) -> GateResult:
    """Infra validation: the fresh-process canary loaded, scored everything, and one record costs
    at most `budget_ms` of CPU time at p99 (best of the canary's timing windows).

    CPU time measures the model, not the machine: on a loaded host wall-clock latency includes the
    time spent waiting for a core, which says nothing about the candidate (a good model measured
    33-87 ms wall-clock p99 at load average 8 on two cores, against a 5 ms idle p99). A model that
    is really too slow costs the CPU time on an idle machine and a busy one alike. The wall-clock
    p50/p99 stay in the values, for the record."""
    if "error" in report:
        return GateResult("servable", False, f"canary failed: {report['error']}", report)
    problems = []
    if report["non_finite"]:
        problems.append(f"{report['non_finite']} non-finite scores on the canary batch")
    if report["cpu_p99_ms"] > budget_ms:
        problems.append(f"p99 CPU time per single-record prediction {report['cpu_p99_ms']:.2f} ms > budget "
                        f"{budget_ms} ms (best of {report['windows']} windows)")
    message = "; ".join(problems) or (f"loaded in {report['load_seconds']:.1f}s in a fresh process; p99 CPU "
                                      f"time per record {report['cpu_p99_ms']:.2f} ms <= {budget_ms} ms (best of "
                                      f"{report['windows']} windows; wall-clock p99 {report['p99_ms']:.2f} ms)")
    return GateResult("servable", not problems, message, {**report, "budget_ms": budget_ms})
