"""The spec types a problem module fills in; the platform builds the asset graph from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa

Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class DatasetSpec:
    """A daily landed dataset: where its files land, its contract, and its time column.

    Files land as `<landing_dir>/<name>/<name>_<YYYY-MM-DD>[_suffix].(csv|parquet)`; the date in
    the file name is the partition (the day the file describes or arrived for).
    """

    name: str
    model: type[pa.DataFrameModel]
    date_column: str  # values may not lie after the partition day

    @property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()


@dataclass(frozen=True)
class CandidateSpec:
    """One model family: a fresh estimator and its search space (keys without the step prefix)."""

    name: str
    estimator: Callable[[int], Any]  # seed -> unfitted estimator
    search_space: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProblemSpec:
    """Everything problem-specific; nothing in here touches Dagster or MLflow."""

    name: str
    task: Task
    target: str
    id_column: str
    time_column: str | None  # None: no time order (static data), split at random with the seed
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    build_features: Callable[[pd.DataFrame], pd.DataFrame]
    features_model: type[pa.DataFrameModel] | pa.DataFrameSchema  # the type of the features/dataset asset
    candidates: tuple[CandidateSpec, ...]
    primary_metric: str  # a scikit-learn scorer name, greater is better
    metric_floor: float  # gate: absolute floor on the primary metric
    max_regression: float = 0.01  # gate: tolerated drop vs the champion
    segment_columns: tuple[str, ...] = ()
    window_days: int = 60
    validation_days: int = 7
    test_days: int = 7
    search_iterations: int = 6
    cv_folds: int = 3
    decision_threshold: float = 0.5
    latency_budget_ms: float = 50.0  # gate: p99 of one single-record prediction through the serving path
    drift_share: float = 0.5  # monitoring: dataset drift once this share of features drifted (Evidently's default)
    performance_tolerance: float = 0.05  # monitoring: realized primary metric this far below the baseline is a drop
    label_window_days: int = 30  # monitoring: how far back late labels are matched with predictions
    retrain_min_labeled_days: int = 10  # retraining waits until this many days of a drift episode have labels
    retrain_cooldown_hours: float = 24.0  # and never requests two retrains closer than this
    episode_gap_days: int = 3  # healthy days in a row that end a drift episode
    customers: DatasetSpec | None = None  # landed problems: the input dataset ...
    labels: DatasetSpec | None = None  # ... and the late labels joined on (id, time)
    load_static: Callable[[], pd.DataFrame] | None = None  # static problems: features + target in one frame

    def __post_init__(self) -> None:
        if (self.load_static is None) == (self.customers is None):
            raise ValueError(f"problem {self.name!r}: give either landed datasets or load_static, not both")
        if not self.candidates:
            raise ValueError(f"problem {self.name!r} needs at least one candidate model")
        if self.customers is not None and self.retrain_min_labeled_days < self.test_days + self.validation_days + 1:
            raise ValueError(f"problem {self.name!r}: a drift retrain trains on the episode's labeled days, so "
                             "retrain_min_labeled_days must cover test + validation days + 1")

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]

    @property
    def registered_model_name(self) -> str:
        return f"{self.name}_model"

    @property
    def input_schema(self) -> pa.DataFrameSchema:
        """What a scoring client sends: the raw landing contract, or the static data without its target."""
        if self.customers is not None:
            return self.customers.schema
        schema = self.features_model if isinstance(self.features_model, pa.DataFrameSchema) \
            else self.features_model.to_schema()
        return schema.remove_columns([self.target])
