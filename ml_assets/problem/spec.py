"""A problem spec: name and task plus six sections (data, training, gate, monitoring, retraining,
experiment).

The user writes it in their own package; the platform builds the asset graph from it. Nothing in
here touches Dagster or MLflow. A spec is checked when it is built, so a wrong value fails at load
time with the field and the fix, not deep inside a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandera.pandas as pa
from sklearn.metrics import get_scorer_names

from ml_assets.core.experiments import MODES
from ml_assets.core.metrics import metric_for_scorer, monitorable_scorers
from ml_assets.core.search import PRUNERS, dimension
from ml_assets.problem.defaults import default_candidates, default_primary_metric
from ml_assets.problem.sections import (
    SECTIONS,
    DataSection,
    ExperimentSection,
    GateSection,
    MonitoringSection,
    RetrainingSection,
    SpecError,
    TrainingSection,
)

Task = Literal["binary", "multiclass", "regression"]
TASKS = ("binary", "multiclass", "regression")
SEARCHES = ("random", "optuna")


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    task: Task
    data: DataSection
    training: TrainingSection = field(default_factory=TrainingSection)
    gate: GateSection = field(default_factory=GateSection)
    monitoring: MonitoringSection = field(default_factory=MonitoringSection)
    retraining: RetrainingSection = field(default_factory=RetrainingSection)
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    decision_threshold: float = 0.5  # binary: score at or above it is the positive label
    owners: tuple[str, ...] = ()  # shown on every asset of the problem: emails or "team:name"
    # "package.module:ATTRIBUTE": how processes outside the code location (the gate's canary, the
    # scoring service, the CLI) import this problem; set by load_problem / the Component.
    ref: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # applied to the referenced spec

    def __post_init__(self) -> None:
        fail = _failer(self.name)
        if self.task not in TASKS:
            fail("task", f"is {self.task!r}", f"use one of {', '.join(TASKS)}")
        self._fill_defaults()
        _check_data(self, fail)
        _check_training(self, fail)
        _check_experiment(self, fail)

    def _fill_defaults(self) -> None:
        training, retraining = self.training, self.retraining
        if training.primary_metric is None:
            training = dataclasses.replace(training, primary_metric=default_primary_metric(self.task))
        if not training.candidates:
            training = dataclasses.replace(training, candidates=default_candidates(self.task))
        if retraining.min_labeled_days is None:
            need = training.test_days + training.validation_days + 1
            retraining = dataclasses.replace(retraining, min_labeled_days=max(10, need))
        if retraining.schedule_running is None:  # static data never changes: a retrain re-registers it
            retraining = dataclasses.replace(retraining, schedule_running=self.data.landed)
        object.__setattr__(self, "training", training)
        object.__setattr__(self, "retraining", retraining)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> ProblemSpec:
        """A copy with section fields replaced, e.g. {"gate": {"metric_floor": 0.8}}; the overrides
        are recorded, so a process that imports the spec by `ref` rebuilds exactly this one."""
        changes, merged = {}, {k: dict(v) for k, v in self.overrides.items()}
        for section, values in overrides.items():
            if section not in SECTIONS and section != "problem":
                raise SpecError(f"problem {self.name!r}: unknown section {section!r}; "
                                f"use one of {', '.join(['problem', *SECTIONS])}")
            target = self if section == "problem" else getattr(self, section)
            known = {f.name for f in dataclasses.fields(target)} - {"ref", "overrides", "data"}
            for key in values:
                if key not in known:
                    raise SpecError(f"problem {self.name!r}: {section}.{key} is not a field; "
                                    f"the fields of {section} are {', '.join(sorted(known))}")
            if section == "problem":
                changes.update(values)
            else:
                changes[section] = dataclasses.replace(target, **self._resolved(section, values))
            merged.setdefault(section, {}).update(values)
        return dataclasses.replace(self, **changes, overrides=merged)

    def _resolved(self, section: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """YAML names candidates (`training: {candidates: [ridge]}`): a subset of the spec's families."""
        values = dict(values)
        names = values.get("candidates") if section == "training" else None
        if names is not None and all(isinstance(n, str) for n in names):
            known = {c.name: c for c in self.training.candidates}
            if unknown := [n for n in names if n not in known]:
                raise SpecError(f"problem {self.name!r}: training.candidates names {', '.join(unknown)}; "
                                f"the spec's candidates are {', '.join(known)}")
            values["candidates"] = tuple(known[n] for n in names)
        return values

    def evolve(self, ref: str | None = None, **fields: Any) -> ProblemSpec:
        """A variant by field name, whatever its section: `spec.evolve(metric_floor=0.9, test_days=3)`.

        Plain values (numbers, strings, lists of them) are recorded as overrides, so the variant still
        loads by this spec's ref; a changed function, model or candidate cannot be recorded, so the
        variant needs a `ref` of its own (the module attribute that holds it) to be served or gated."""
        sections: dict[str, dict[str, Any]] = {}
        for key, value in fields.items():
            section = "problem" if key in ("name", "task", "decision_threshold", "owners") else _section_of(key)
            sections.setdefault(section, {})[key] = value
        variant = self.with_overrides(sections)
        if ref is not None or not all(_recordable(v) for v in fields.values()):
            # the new ref names the variant itself: nothing to apply on top of it
            variant = dataclasses.replace(variant, ref=ref, overrides={})
        return variant

    def features_of(self, frame):
        """The model's input columns from a frame of the input dataset (or the static data): one
        function for batch and online scoring."""
        build = self.data.build_features
        return build(frame) if build is not None else frame

    @property
    def feature_columns(self) -> list[str]:
        return [*self.data.numeric_features, *self.data.categorical_features]

    @property
    def primary_metric_name(self) -> str:
        """The evaluation's name of the primary metric (`test_<name>` in MLflow, `realized_<name>` in
        monitoring), e.g. `pr_auc` for the scorer `average_precision`; a scorer the platform has no
        metric for is logged by the evaluation as `primary_<scorer>`."""
        metric = metric_for_scorer(self.task, self.training.primary_metric)
        return metric.name if metric else f"primary_{self.training.primary_metric}"

    @property
    def registered_model_name(self) -> str:
        return model_name(self.name)

    @property
    def input_schema(self) -> pa.DataFrameSchema:
        """What a scoring client sends: the input dataset's contract, or the static data without its target."""
        if self.data.inputs is not None:
            return self.data.inputs.schema
        model = self.data.features_model
        schema = model if isinstance(model, pa.DataFrameSchema) else model.to_schema()
        return schema.remove_columns([self.data.target])


def model_name(problem: str) -> str:
    """The registered model of a problem (`loans` -> `loans_model`)."""
    return f"{problem}_model"


def _section_of(key: str) -> str:
    for name, section in SECTIONS.items():
        if key in {f.name for f in dataclasses.fields(section)}:
            return name
    raise SpecError(f"{key!r} is not a field of any problem section ({', '.join(SECTIONS)})")


def _recordable(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_recordable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _failer(problem: str):
    def fail(field_name: str, problem_text: str, fix: str) -> None:
        raise SpecError(f"problem {problem!r}: {field_name} {problem_text}; {fix}")

    return fail


def _check_data(spec: ProblemSpec, fail) -> None:
    data = spec.data
    if (data.load_static is None) == (data.inputs is None):
        fail("data", "gives both or neither of inputs and load_static",
             "give landed datasets (inputs + labels) or load_static, not both")
    if data.inputs is not None and data.labels is None:
        fail("data.labels", "is missing", "a landed problem learns from late labels: name their dataset")
    if data.inputs is not None and data.time_column is None:
        fail("data.time_column", "is None", "a landed problem is split by day: name the time column of its inputs")
    for name in ("numeric_features", "categorical_features", "segment_columns"):
        bad = [repr(c) for c in getattr(data, name) if type(c) is not str]
        if bad:
            fail(f"data.{name}", f"holds names that are not str ({', '.join(bad[:3])})",
                 "give plain Python strings, e.g. tuple(str(c) for c in names)")
    if not spec.feature_columns:
        fail("data", "names no features", "list numeric_features and/or categorical_features")
    dupes = sorted({c for c in spec.feature_columns if spec.feature_columns.count(c) > 1})
    if dupes:
        fail("data", f"lists features twice ({', '.join(dupes)})", "name each feature once")
    for column in (data.target, data.id_column, data.time_column):
        if column in spec.feature_columns:
            fail("data", f"uses {column!r} as a feature and as target/id/time", "drop it from the features")
    if data.features_model is None:
        fail("data.features_model", "is missing", "give the pandera model (or schema) of the features frame")


def _check_training(spec: ProblemSpec, fail) -> None:
    t, r = spec.training, spec.retraining
    if t.primary_metric not in get_scorer_names():
        fail("training.primary_metric", f"{t.primary_metric!r} is not a scikit-learn scorer name",
             "see sklearn.metrics.get_scorer_names(), e.g. roc_auc, f1_macro, r2")
    for name in ("validation_days", "test_days", "cv_folds", "search_iterations", "window_days"):
        if getattr(t, name) < 1:
            fail(f"training.{name}", f"is {getattr(t, name)}", "use 1 or more")
    if t.cv_gap_days < 0:
        fail("training.cv_gap_days", f"is {t.cv_gap_days}", "use 0 or more days")
    _check_search(t, fail)
    if t.max_training_rows is not None and t.max_training_rows < 1_000:
        fail("training.max_training_rows", f"is {t.max_training_rows}",
             "use None (every row) or at least 1000 rows, enough for every split to hold both classes")
    if not 0 < spec.monitoring.drift_share <= 1:
        fail("monitoring.drift_share", f"is {spec.monitoring.drift_share}", "use a share in (0, 1]")
    if not spec.data.landed:
        return
    if t.primary_metric not in monitorable_scorers(spec.task):
        fail("training.primary_metric", f"{t.primary_metric!r} cannot be computed from {spec.task} prediction rows "
             "(a landed problem is monitored on them)", f"use one of {', '.join(monitorable_scorers(spec.task))}")
    need = t.test_days + t.validation_days + 1
    if r.min_labeled_days < need:
        fail("retraining.min_labeled_days", f"({r.min_labeled_days}) is below training.test_days ({t.test_days}) + "
             f"training.validation_days ({t.validation_days}) + 1 = {need}",
             "a drift retrain trains on the episode's labeled days: raise it or shorten the splits")
    if t.window_days < need:
        fail("training.window_days", f"({t.window_days}) is below training.test_days ({t.test_days}) + "
             f"training.validation_days ({t.validation_days}) + 1 = {need}", "widen the window or shorten the splits")


def _check_search(t: TrainingSection, fail) -> None:
    if t.search not in SEARCHES:
        fail("training.search", f"is {t.search!r}", "use 'random' (randomized search) or 'optuna' (TPE study)")
    if t.optuna_pruner not in PRUNERS:
        fail("training.optuna_pruner", f"is {t.optuna_pruner!r}", f"use one of {', '.join(PRUNERS)}")
    if t.optuna_heartbeat_seconds < 1:
        fail("training.optuna_heartbeat_seconds", f"is {t.optuna_heartbeat_seconds}", "use 1 or more seconds")
    if t.search != "optuna":
        return
    for candidate in t.candidates:
        for key, value in candidate.search_space.items():
            try:
                dimension(value)
            except ValueError as error:
                fail(f"training.candidates[{candidate.name!r}].search_space[{key!r}]", str(error),
                     "give a list of choices or a scipy.stats loguniform, uniform or randint")


def _check_experiment(spec: ProblemSpec, fail) -> None:
    e = spec.experiment
    if e.promotion not in ("direct", "experiment"):
        fail("experiment.promotion", f"is {e.promotion!r}", "use direct or experiment")
    if e.mode not in MODES:
        fail("experiment.mode", f"is {e.mode!r}", f"use one of {', '.join(MODES)}")
    if e.mode != "shadow" and not 0 < e.challenger_share < 1:
        fail("experiment.challenger_share", f"is {e.challenger_share}", "use a share in (0, 1), e.g. 0.5 (ab) or 0.1 (canary)")
    if not 0 < e.alpha < 0.5:
        fail("experiment.alpha", f"is {e.alpha}", "use an error rate in (0, 0.5), e.g. 0.05")
    if e.min_samples < 30 or e.max_days < 1:
        fail("experiment", f"min_samples={e.min_samples}, max_days={e.max_days}",
             "use min_samples >= 30 (the test estimates a variance) and max_days >= 1")
    for name, low, high in (("max_error_rate", 0, 1), ("max_score_shift", 0, 100), ("max_calibration_error", 0, 1)):
        if not low < getattr(e, name) <= high:
            fail(f"experiment.{name}", f"is {getattr(e, name)}", f"use a value in ({low}, {high}]")
    if e.max_p99_ms is not None and e.max_p99_ms <= 0:
        fail("experiment.max_p99_ms", f"is {e.max_p99_ms}", "use milliseconds > 0, or None for gate.latency_budget_ms")
    if e.promotion == "experiment" and not spec.data.landed:
        fail("experiment.promotion", "is experiment for a problem without served traffic and late labels",
             "use direct, or give the problem landed inputs and labels")
    # a landed problem's primary metric is computable from prediction rows (checked above), so it
    # has a per-row loss (core.experiments.row_loss)
