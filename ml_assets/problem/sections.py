"""The sections of a problem spec. Every default is valid for every task and kind of problem; a value
that cannot work fails when the problem is loaded, naming the field and the fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa


class SpecError(ValueError):
    """A problem spec that cannot work; the message names the problem, the field and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """A daily dataset: its contract, its time column and where a day comes from.

    source None: files land as `<landing_dir>/<name>/<name>_<YYYY-MM-DD>[_suffix].(csv|csv.gz|parquet)`,
    the date in the file name being the partition. Otherwise a pull source from `ml_assets.sources`
    (SQL, HTTP JSON API) that returns one day's rows; either way the day goes through the same
    archive -> validation -> quarantine path.
    """

    name: str
    model: type[pa.DataFrameModel]
    date_column: str  # values may not lie after the partition day
    source: Any = None

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
class DataSection:
    """What the problem learns from. Landed problems name an input dataset (the records scored, one
    row per entity and day) and a labels dataset (joined on id and time, possibly days later);
    static problems give `load_static` (features + target in one frame)."""

    target: str
    id_column: str
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    time_column: str | None = None  # None: no time order (static data), split at random with the seed
    features_model: type[pa.DataFrameModel] | pa.DataFrameSchema | None = None  # type of the features asset
    build_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None  # None: the input columns as they are
    inputs: DatasetSpec | None = None
    labels: DatasetSpec | None = None
    load_static: Callable[[], pd.DataFrame] | None = None
    segment_columns: tuple[str, ...] = ()  # evaluation slices
    partitions_start: str | None = None  # first daily partition (YYYY-MM-DD); None: the platform's default

    @property
    def landed(self) -> bool:
        return self.inputs is not None


@dataclass(frozen=True)
class TrainingSection:
    candidates: tuple[CandidateSpec, ...] = ()
    primary_metric: str | None = None  # a scikit-learn scorer, greater is better; None: the task's default
    window_days: int = 60  # calendar days back from the newest labelled day
    validation_days: int = 7
    test_days: int = 7
    search_iterations: int = 6
    cv_folds: int = 3
    cv_gap_days: int = 0  # calendar days left out between a fold's fit and validation days (label leakage)
    # "random": scikit-learn's RandomizedSearchCV; "optuna": a seeded TPE study pruning on CV folds, in
    # memory or in the RDB named by ML_ASSETS_OPTUNA_STORAGE, which any number of workers can join
    search: str = "random"
    optuna_pruner: str = "median"  # "median": stop a trial whose running fold mean is below the median; "none"
    optuna_heartbeat_seconds: int = 10  # a trial silent for 3x this long is a dead worker's: FAIL and rerun
    # a fit needs its rows in memory: above this many labelled rows in the window, each day keeps its
    # proportional share, drawn with the training seed (counts, class balance and the reference profile
    # still see every row); None: every row, however many
    max_training_rows: int | None = None


@dataclass(frozen=True)
class GateSection:
    metric_floor: float | None = None  # absolute floor on the primary metric; None: no floor
    max_regression: float = 0.01  # tolerated drop vs the champion
    latency_budget_ms: float = 50.0  # p99 CPU time of one single-record prediction through the serving path


@dataclass(frozen=True)
class MonitoringSection:
    drift_share: float = 0.5  # dataset drift once this share of features drifted (Evidently's default)
    performance_tolerance: float = 0.05  # realized primary metric this far below the baseline is a drop
    label_window_days: int = 30  # how far back late labels are matched with predictions


@dataclass(frozen=True)
class RetrainingSection:
    # a drift retrain waits until this many days of the episode have labels; None: 10, or
    # test_days + validation_days + 1 when that is more (the retrain trains on the episode's days)
    min_labeled_days: int | None = None
    cooldown_hours: float = 24.0  # never two retrains closer than this
    episode_gap_days: int = 3  # healthy days in a row that end a drift episode
    cron: str = "0 3 * * 1"  # the scheduled retrain (UTC; default Mondays 03:00): slow drift still ages a model
    schedule_running: bool | None = None  # that schedule on by default; None: for landed problems only


@dataclass(frozen=True)
class ExperimentSection:
    """How a candidate that passed the gate reaches `@champion`: at once, or through an online
    experiment on live traffic decided by a sequential test on late labels (core/experiments.py)."""

    promotion: str = "direct"  # direct | experiment (the candidate becomes @challenger; the experiment decides)
    mode: str = "ab"  # ab / canary: challenger_share of entities answered by the challenger; shadow: it only scores
    challenger_share: float = 0.5
    alpha: float = 0.05  # the test's error rate, however often it is looked at
    min_samples: int = 1000  # labelled rows in the smaller arm before anything is decided
    max_days: int = 28  # no decision by then: stop, the champion stays
    mixture_sd: float | None = None  # effect scale the test is tuned to, in loss units; None: 10 % of the loss sd
    # guardrails on the challenger arm; a breach stops the experiment (all traffic back to the champion)
    max_error_rate: float = 0.01  # challenger failures / rows routed to it (every sensor tick)
    max_p99_ms: float | None = None  # its model-call p99 (every tick); None: gate.latency_budget_ms
    max_score_shift: float = 0.25  # PSI of its scores vs the champion's (every tick)
    max_calibration_error: float = 0.05  # binary: |mean score - observed rate| on its labelled rows (daily)


SECTIONS = {"data": DataSection, "training": TrainingSection, "gate": GateSection,
            "monitoring": MonitoringSection, "retraining": RetrainingSection, "experiment": ExperimentSection}
