"""Train candidate model families with a search + cross-validation; pick on validation. The search
is scikit-learn's randomized search, or an Optuna study (`training.search`, see core/search.py).

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
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.problem import CandidateSpec, ProblemSpec


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold of a time-ordered training set: the days it was fit on and the
    (strictly later) days it was scored on."""

    fit_days: tuple[str, str]  # first, last (YYYY-MM-DD)
    validation_days: tuple[str, str]
    fit_rows: int
    validation_rows: int

    def describe(self) -> str:
        return (f"fit {self.fit_days[0]}..{self.fit_days[1]} ({self.fit_rows} rows), "
                f"validate {self.validation_days[0]}..{self.validation_days[1]} ({self.validation_rows} rows)")


@dataclass
class CandidateResult:
    name: str
    params: dict
    cv_score: float
    cv_std: float
    validation_score: float
    seconds: float
    folds: tuple[Fold, ...] = ()  # time-ordered problems only; random folds have no date range
    fold_scores: tuple[float, ...] = ()  # the chosen parameters' score on each fold


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
    features = ColumnTransformer([("numeric", numeric, list(spec.data.numeric_features)),
                                  ("categorical", categorical, list(spec.data.categorical_features))],
                                 remainder="drop")  # ids and timestamps never reach the estimator
    return Pipeline([("features", features), ("model", estimator)])


def time_folds(days: pd.Series, n_splits: int, gap_days: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, validation rows) per fold, split by DAY whatever the row order: the distinct days
    are cut into k + 1 consecutive blocks (as TimeSeriesSplit cuts rows), fold i validates on block
    i + 1 and fits on every earlier day more than `gap_days` calendar days before it (a label that
    matures over days would otherwise leak from the fit days into validation). k is `n_splits`, or
    as many folds as the days allow; empty when not even one fold has a day to fit on."""
    values = days.to_numpy(dtype="datetime64[D]")
    unique = np.unique(values)
    for k in range(min(n_splits, len(unique) - 1), 0, -1):
        size, folds = len(unique) // (k + 1), []
        for end in range(len(unique) - (k - 1) * size, len(unique) + 1, size):  # TimeSeriesSplit's blocks
            block = unique[end - size:end]
            fit = np.flatnonzero(values < block[0] - np.timedelta64(gap_days, "D"))
            folds.append((fit, np.flatnonzero(np.isin(values, block))))
        if all(len(fit) for fit, _ in folds):
            return folds
    return []


def describe_folds(days: pd.Series, folds: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Fold, ...]:
    def span(rows: np.ndarray) -> tuple[str, str]:
        picked = days.iloc[rows]
        return f"{picked.min():%Y-%m-%d}", f"{picked.max():%Y-%m-%d}"

    return tuple(Fold(span(fit), span(val), len(fit), len(val)) for fit, val in folds)


def cv_splits(spec: ProblemSpec, train: pd.DataFrame, validation: pd.DataFrame, seed: int):
    """(the rows the search runs on, its cross-validation; positional rows).

    Time-ordered problems validate each fold only on days after every day it was fit on. With too
    few train days for a single fold (a drift retrain on the episode's first labelled days), the one
    fold is the split itself: fit on the train days, validate on the validation days after them."""
    if not spec.data.time_column:
        cv = KFold if spec.task == "regression" else StratifiedKFold
        return train, cv(spec.training.cv_folds, shuffle=True, random_state=seed)
    if folds := time_folds(train[spec.data.time_column], spec.training.cv_folds, spec.training.cv_gap_days):
        return train, folds
    first = validation[spec.data.time_column].min()
    fit = np.flatnonzero(train[spec.data.time_column] < first - pd.Timedelta(days=spec.training.cv_gap_days))
    if not len(fit):
        raise ValueError(f"no train day lies more than cv_gap_days={spec.training.cv_gap_days} before the validation days "
                         f"(from {first:%Y-%m-%d}): lower cv_gap_days or widen the training window")
    both = pd.concat([train, validation], ignore_index=True)
    return both, [(fit, np.arange(len(train), len(both)))]


def _budget(candidate: CandidateSpec, n_iter: int) -> int:
    """Trials to run: never more than a space of lists holds (an empty space: one, the defaults)."""
    sizes = [len(v) if isinstance(v, list) else np.inf for v in candidate.search_space.values()]
    return int(min(n_iter, np.prod(sizes)))


def _search(spec: ProblemSpec, candidate: CandidateSpec, frame: pd.DataFrame, seed: int, n_iter: int, cv,
            n_jobs: int, refit_on: pd.DataFrame) -> tuple[RandomizedSearchCV, Pipeline]:
    """The search, and its best pipeline fit on `refit_on` (the train split: the validation score
    that picks the winner must come from rows the pipeline never saw)."""
    space = {f"model__{key}": values for key, values in candidate.search_space.items()}
    refit = refit_on is frame
    search = RandomizedSearchCV(  # an empty space is one fit with the defaults
        build_pipeline(spec, candidate.estimator(seed)), space, n_iter=_budget(candidate, n_iter), cv=cv,
        scoring=spec.training.primary_metric, random_state=seed, n_jobs=n_jobs, refit=refit, error_score="raise")
    search.fit(frame[spec.feature_columns], frame[spec.data.target])
    best = search.best_estimator_ if refit else clone(search.estimator).set_params(**search.best_params_).fit(
        refit_on[spec.feature_columns], refit_on[spec.data.target])
    return search, best


@dataclass(frozen=True)
class SearchInputs:
    """What every candidate's search shares: the split rows and the cross-validation over them."""

    train: pd.DataFrame  # positional index: the folds are positions in `frame`
    validation: pd.DataFrame
    frame: pd.DataFrame  # the rows searched (train, or train + validation for the one-fold fallback)
    cv: object  # a scikit-learn splitter or explicit (fit, validation) positions
    folds: tuple[Fold, ...]


def prepare_search(training_set: pd.DataFrame, spec: ProblemSpec, seed: int = 0) -> SearchInputs:
    train = training_set[training_set["split"] == "train"]
    val = training_set[training_set["split"] == "validation"]
    if train.empty or val.empty:
        raise ValueError("the training set needs non-empty 'train' and 'validation' splits")
    train = train.reset_index(drop=True)
    frame, cv = cv_splits(spec, train, val, seed)
    folds = describe_folds(frame[spec.data.time_column], cv) if spec.data.time_column else ()
    return SearchInputs(train, val, frame, cv, folds)


def search_candidate(inputs: SearchInputs, spec: ProblemSpec, candidate: CandidateSpec, seed: int = 0,
                     n_iter: int | None = None, n_jobs: int | None = None) -> tuple[CandidateResult, Pipeline]:
    """One model family: its search on the train split, scored on the validation split.

    Self-contained (a function of its arguments only), so families can run as separate steps, in
    separate processes or on separate machines, and give the same result as in one loop. n_jobs
    sizes the randomized search's process pool; an Optuna study runs its trials one at a time in
    this process, and processes calling this with the same arguments share one study when
    ML_ASSETS_OPTUNA_STORAGE names a database."""
    start = time.perf_counter()
    n_iter = n_iter or spec.training.search_iterations
    if spec.training.search == "optuna":
        from ml_assets.core.search import optuna_search

        params, fold_scores, estimator = optuna_search(inputs, spec, candidate, seed, _budget(candidate, n_iter))
        cv_score, cv_std = float(np.mean(fold_scores)), float(np.std(fold_scores))
    else:
        try:
            search, estimator = _search(spec, candidate, inputs.frame, seed, n_iter, inputs.cv,
                                        n_jobs or default_n_jobs(), refit_on=inputs.train)
        finally:
            # The search's loky worker pool idles for 300 s before exiting, and a process cannot end while
            # it lives: under Dagster's multiprocess executor every training step would stall 5 minutes.
            get_reusable_executor().shutdown(wait=True)
        best = search.best_index_
        params = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
        cv_score = float(search.cv_results_["mean_test_score"][best])
        cv_std = float(search.cv_results_["std_test_score"][best])
        fold_scores = [float(search.cv_results_[f"split{k}_test_score"][best]) for k in range(search.n_splits_)]
    scorer = get_scorer(spec.training.primary_metric)
    result = CandidateResult(
        name=candidate.name, params=params, cv_score=cv_score, cv_std=cv_std,
        validation_score=float(scorer(estimator, inputs.validation[spec.feature_columns],
                                      inputs.validation[spec.data.target])),
        seconds=time.perf_counter() - start, folds=inputs.folds, fold_scores=tuple(fold_scores))
    return result, estimator


def pick_winner(inputs: SearchInputs, spec: ProblemSpec, results: list[CandidateResult],
                fitted: dict[str, Pipeline]) -> TrainingResult:
    """The best family on validation, refit on train + validation. Ties: first in spec order."""
    winner = max(results, key=lambda r: (r.validation_score, r.cv_score))
    both = pd.concat([inputs.train, inputs.validation])
    pipeline = clone(fitted[winner.name]).fit(both[spec.feature_columns], both[spec.data.target])
    return TrainingResult(best=winner.name, pipeline=pipeline, candidates=list(results))


def train_candidates(training_set: pd.DataFrame, spec: ProblemSpec, seed: int = 0, n_iter: int | None = None,
                     n_jobs: int | None = None, log: Callable[[str], None] = print,
                     on_candidate: Callable[[CandidateResult], None] | None = None) -> TrainingResult:
    """Search every candidate family on the train split, pick the best on the validation split."""
    inputs = prepare_search(training_set, spec, seed)
    results, fitted = [], {}
    for i, candidate in enumerate(spec.training.candidates, 1):
        result, fitted[candidate.name] = search_candidate(inputs, spec, candidate, seed, n_iter, n_jobs)
        results.append(result)
        log(f"[{i}/{len(spec.training.candidates)}] {candidate.name}: cv {spec.training.primary_metric} {result.cv_score:.4f} "
            f"± {result.cv_std:.4f}, validation {result.validation_score:.4f} ({result.seconds:.1f}s)")
        if on_candidate:
            on_candidate(result)
    return pick_winner(inputs, spec, results, fitted)
