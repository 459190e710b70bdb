"""Train candidate model families with randomized search + cross-validation; pick on validation.

The model is one fitted scikit-learn Pipeline (preprocessing + estimator): batch scoring and the
online service later call the very same object, so there is no training/serving skew.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib.externals.loky import get_reusable_executor
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold, TimeSeriesSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.problems.spec import CandidateSpec, ProblemSpec


@dataclass
class CandidateResult:
    name: str
    params: dict
    cv_score: float
    cv_std: float
    validation_score: float
    seconds: float


@dataclass
class TrainingResult:
    best: str
    pipeline: Pipeline  # the winner, refit on train + validation
    candidates: list[CandidateResult] = field(default_factory=list)


def default_n_jobs() -> int:
    """Bounded by the cores this process may use (cgroups/affinity), not the machine's total."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def build_pipeline(spec: ProblemSpec, estimator) -> Pipeline:
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    features = ColumnTransformer([("numeric", numeric, list(spec.numeric_features)),
                                  ("categorical", categorical, list(spec.categorical_features))],
                                 remainder="drop")  # ids and timestamps never reach the estimator
    return Pipeline([("features", features), ("model", estimator)])


def _cv(spec: ProblemSpec, folds: int, seed: int):
    if spec.time_column:  # rows are time-sorted: each fold validates on days after the ones it fits
        return TimeSeriesSplit(n_splits=folds)
    if spec.task == "regression":
        return KFold(folds, shuffle=True, random_state=seed)
    return StratifiedKFold(folds, shuffle=True, random_state=seed)


def _search(spec: ProblemSpec, candidate: CandidateSpec, x: pd.DataFrame, y: pd.Series,
            seed: int, n_iter: int, folds: int, n_jobs: int) -> RandomizedSearchCV:
    space = {f"model__{key}": values for key, values in candidate.search_space.items()}
    sizes = [len(v) if isinstance(v, list) else np.inf for v in space.values()]
    search = RandomizedSearchCV(  # an empty space is one fit with the defaults
        build_pipeline(spec, candidate.estimator(seed)), space,
        n_iter=int(min(n_iter, np.prod(sizes))), cv=_cv(spec, folds, seed),
        scoring=spec.primary_metric, random_state=seed, n_jobs=n_jobs, refit=True, error_score="raise")
    return search.fit(x, y)


def train_candidates(training_set: pd.DataFrame, spec: ProblemSpec, seed: int = 0, n_iter: int | None = None,
                     n_jobs: int | None = None, log: Callable[[str], None] = print,
                     on_candidate: Callable[[CandidateResult], None] | None = None) -> TrainingResult:
    """Search every candidate family on the train split, pick the best on the validation split."""
    train = training_set[training_set["split"] == "train"]
    val = training_set[training_set["split"] == "validation"]
    if train.empty or val.empty:
        raise ValueError("the training set needs non-empty 'train' and 'validation' splits")
    x, y = train[spec.feature_columns], train[spec.target]
    scorer, results, fitted = get_scorer(spec.primary_metric), [], {}
    for i, candidate in enumerate(spec.candidates, 1):
        start = time.perf_counter()
        search = _search(spec, candidate, x, y, seed, n_iter or spec.search_iterations, spec.cv_folds,
                         n_jobs or default_n_jobs())
        best = search.best_index_
        result = CandidateResult(
            name=candidate.name, params={k.removeprefix("model__"): v for k, v in search.best_params_.items()},
            cv_score=float(search.cv_results_["mean_test_score"][best]),
            cv_std=float(search.cv_results_["std_test_score"][best]),
            validation_score=float(scorer(search.best_estimator_, val[spec.feature_columns], val[spec.target])),
            seconds=time.perf_counter() - start)
        results.append(result)
        fitted[candidate.name] = search.best_estimator_
        log(f"[{i}/{len(spec.candidates)}] {candidate.name}: cv {spec.primary_metric} {result.cv_score:.4f} "
            f"± {result.cv_std:.4f}, validation {result.validation_score:.4f} ({result.seconds:.1f}s)")
        if on_candidate:
            on_candidate(result)
    # The search's loky worker pool idles for 300 s before exiting, and a process cannot end while
    # it lives: under Dagster's multiprocess executor every training step would stall 5 minutes.
    get_reusable_executor().shutdown(wait=True)
    winner = max(results, key=lambda r: (r.validation_score, r.cv_score))  # ties: first in spec order
    both = pd.concat([train, val])
    pipeline = clone(fitted[winner.name]).fit(both[spec.feature_columns], both[spec.target])
    return TrainingResult(best=winner.name, pipeline=pipeline, candidates=results)
