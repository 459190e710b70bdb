"""The spec types a problem module fills in; the platform builds the asset graph from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
from sklearn.metrics import get_scorer_names

from ml_assets.core.metrics import metric_for_scorer, monitorable_scorers

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
    window_days: int = 60  # training window: calendar days back from the newest labelled day
    validation_days: int = 7
    test_days: int = 7
    search_iterations: int = 6
    cv_folds: int = 3
    cv_gap_days: int = 0  # time-ordered CV: calendar days left out between a fold's fit and validation days
    decision_threshold: float = 0.5
    latency_budget_ms: float = 50.0  # gate: p99 of one single-record prediction through the serving path
    drift_share: float = 0.5  # monitoring: dataset drift once this share of features drifted (Evidently's default)
    performance_tolerance: float = 0.05  # monitoring: realized primary metric this far below the baseline is a drop
    label_window_days: int = 30  # monitoring: how far back late labels are matched with predictions
    # retraining waits until this many days of a drift episode have labels; None: 10, or
    # test_days + validation_days + 1 when that is more (the retrain trains on the episode's days)
    retrain_min_labeled_days: int | None = None
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
        need = self.test_days + self.validation_days + 1
        if self.retrain_min_labeled_days is None:
            object.__setattr__(self, "retrain_min_labeled_days", max(10, need))
        if self.primary_metric not in get_scorer_names():
            raise ValueError(f"problem {self.name!r}: primary_metric {self.primary_metric!r} is not a scikit-learn "
                             "scorer name; see sklearn.metrics.get_scorer_names(), e.g. roc_auc, f1_macro, r2")
        if self.cv_gap_days < 0:
            raise ValueError(f"problem {self.name!r}: cv_gap_days is {self.cv_gap_days}; use 0 or more days")
        if self.customers is None:
            return
        if self.primary_metric not in monitorable_scorers(self.task):
            raise ValueError(f"problem {self.name!r}: a landed problem is monitored on its predictions, and "
                             f"primary_metric {self.primary_metric!r} cannot be computed from {self.task} prediction "
                             f"rows; use one of {', '.join(monitorable_scorers(self.task))}")
        if self.retrain_min_labeled_days < need:
            raise ValueError(f"problem {self.name!r}: a drift retrain trains on the episode's labeled days, so "
                             f"retrain_min_labeled_days ({self.retrain_min_labeled_days}) must cover test_days "
                             f"({self.test_days}) + validation_days ({self.validation_days}) + 1 = {need}")
        if self.window_days < need:
            raise ValueError(f"problem {self.name!r}: window_days ({self.window_days}) must cover test_days "
                             f"({self.test_days}) + validation_days ({self.validation_days}) + 1 = {need}")

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]

    @property
    def primary_metric_name(self) -> str:
        """The evaluation's name of the primary metric (`test_<name>` in MLflow, `realized_<name>` in
        monitoring), e.g. `pr_auc` for the scorer `average_precision`; a scorer the platform has no
        metric for is logged by the evaluation as `primary_<scorer>`."""
        metric = metric_for_scorer(self.task, self.primary_metric)
        return metric.name if metric else f"primary_{self.primary_metric}"

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
