"""The ML-problems Component: a code location's problems, each a reference into the user's own
package plus YAML overrides of its thresholds, windows and schedules.

```yaml
# <project>/defs/problems/defs.yaml
type: ml_assets.components.MLProblems
attributes:
  problems:
    - spec: loans.problem:LOANS          # a ProblemSpec (or a function returning one) in your package
      gate: {metric_floor: 0.72}
      monitoring: {drift_share: 0.3}
      retraining: {cron: "0 4 * * *"}
```

One component lists all the location's problems rather than one component per problem: datasets
shared by two problems are ingested once and the location-wide sensors (automation, failure
alerts) exist once, which separate component instances would each have to define again.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from ml_assets.definitions import build_definitions
from ml_assets.problem.loading import load_problem


class ProblemEntry(dg.Model):
    spec: str = Field(description="'package.module:ATTRIBUTE' of a ProblemSpec (or a function returning one)")
    problem: dict[str, Any] = Field(default_factory=dict, description="name, decision_threshold, owners")
    data: dict[str, Any] = Field(default_factory=dict, description="e.g. partitions_start, segment_columns")
    training: dict[str, Any] = Field(default_factory=dict, description="window/split days, search (random | optuna, optuna_pruner, "
                                                  "optuna_heartbeat_seconds), CV, metric")
    gate: dict[str, Any] = Field(default_factory=dict, description="metric_floor, max_regression, latency_budget_ms")
    monitoring: dict[str, Any] = Field(default_factory=dict,
                                       description="drift_share, performance_tolerance, label_window_days")
    retraining: dict[str, Any] = Field(default_factory=dict,
                                       description="min_labeled_days, cooldown_hours, episode_gap_days, cron, "
                                                   "schedule_running")
    experiment: dict[str, Any] = Field(default_factory=dict,
                                       description="promotion (direct|experiment), mode (ab|canary|shadow), "
                                                   "challenger_share, alpha, min_samples, max_days")

    def overrides(self) -> dict[str, dict[str, Any]]:
        sections = ("problem", "data", "training", "gate", "monitoring", "retraining", "experiment")
        return {name: values for name in sections if (values := getattr(self, name))}


class MLProblems(dg.Component, dg.Model, dg.Resolvable):
    """ML problems as Dagster assets: ingestion, features, training, gate, champion, scoring,
    monitoring and retraining for each problem listed."""

    problems: list[ProblemEntry] = Field(description="the problems of this code location")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions([load_problem(entry.spec, entry.overrides()) for entry in self.problems])
