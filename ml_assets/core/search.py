"""Optuna search for one candidate family: a seeded TPE study that prunes on cross-validation folds.

The study lives in memory, or in the RDB named by ML_ASSETS_OPTUNA_STORAGE (e.g. PostgreSQL), where
any number of worker processes join it: each one that calls `optuna_search` with the same inputs
runs trials until the study holds exactly `n_trials` finished (complete or pruned) trials, and every
one of them returns the study's best. A worker killed mid-trial stops its heartbeat; another worker
marks that trial FAIL and runs its parameters again, so no trial is lost and none is counted twice.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv

if TYPE_CHECKING:
    import optuna
    from sklearn.pipeline import Pipeline

    from ml_assets.core.training import SearchInputs
    from ml_assets.problem import CandidateSpec, ProblemSpec

STORAGE_ENV = "ML_ASSETS_OPTUNA_STORAGE"
PRUNERS = ("median", "none")
_PRIMITIVE = (bool, int, float, str, type(None))
_SETTLED = ("COMPLETE", "PRUNED")
_COUNTED = (*_SETTLED, "RUNNING", "WAITING")  # every state but FAIL holds (or will hold) a budget slot


def dimension(value: Any) -> tuple:
    """A search-space value as ("categorical", choices) | ("float", low, high, log) | ("int", low, high);
    ValueError naming what is supported otherwise (the spec check turns it into a SpecError)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("is an empty list")
        return ("categorical", tuple(value))
    family = getattr(getattr(value, "dist", None), "name", None)
    if family in ("loguniform", "reciprocal", "uniform"):
        low, high = value.support()
        return ("float", float(low), float(high), family != "uniform")
    if family == "randint":
        low, high = value.support()
        return ("int", int(low), int(high))
    raise ValueError(f"is {family or type(value).__name__}, which an Optuna study cannot sample")


class _Surplus(Exception):
    """A trial started past the budget (two workers claimed the last slot at once)."""


def _suggest(trial: optuna.Trial, name: str, dim: tuple) -> Any:
    if dim[0] == "float":
        return trial.suggest_float(name, dim[1], dim[2], log=dim[3])
    if dim[0] == "int":
        return trial.suggest_int(name, dim[1], dim[2])
    choices = dim[1]
    if all(isinstance(c, _PRIMITIVE) for c in choices):
        return trial.suggest_categorical(name, [c.item() if isinstance(c, np.generic) else c for c in choices])
    # Optuna stores only primitives: objects (tuples, estimators) are chosen by their repr
    return dict(zip(map(repr, choices), choices))[trial.suggest_categorical(name, [repr(c) for c in choices])]


def storage_url(url: str | None = None) -> str | None:
    """The study's RDB URL (None: in memory). SQLAlchemy 2.1's default PostgreSQL driver is
    psycopg 3, which is not installed: a plain postgresql:// URL means psycopg2."""
    url = url if url is not None else os.environ.get(STORAGE_ENV) or None
    for scheme in ("postgresql://", "postgres://"):
        if url and url.startswith(scheme):
            return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


def _storage(url: str | None, heartbeat_seconds: int):
    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    with warnings.catch_warnings():  # heartbeats and retries are marked experimental since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
        # grace: three missed beats (Optuna's default is two), so a busy machine does not fail live trials
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_seconds, grace_period=3 * heartbeat_seconds,
                                          heartbeat_stale_trial_callback=retry)


def study_name(inputs: SearchInputs, spec: ProblemSpec, candidate: CandidateSpec, seed: int, n_trials: int) -> str:
    """Problem, family and a digest of everything that defines the search: workers given the same
    inputs join one study without coordinating, and a rerun after a crash resumes it."""
    from ml_assets.core.lineage import frame_hash

    digest = hashlib.sha256(frame_hash(inputs.frame).encode())
    t = spec.training
    space = sorted((key, dimension(value)) for key, value in candidate.search_space.items())  # not reprs with addresses
    digest.update(repr((seed, n_trials, t.primary_metric, t.optuna_pruner, space)).encode())
    for fit, val in _folds(inputs, spec):
        digest.update(fit.tobytes() + b"|" + val.tobytes())
    return f"{spec.name}.{candidate.name}.{digest.hexdigest()[:16]}"


def _folds(inputs: SearchInputs, spec: ProblemSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, validation) positions, as the randomized search splits (a seeded splitter or explicit days)."""
    y = inputs.frame[spec.data.target]
    splitter = check_cv(inputs.cv, y, classifier=spec.task != "regression")
    return [(np.asarray(fit, dtype=np.int64), np.asarray(val, dtype=np.int64)) for fit, val in splitter.split(inputs.frame, y)]


def _claim_slot(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> None:
    """The first `n_trials` trials (by number) that are not FAIL own the budget; a later one is a
    surplus. Numbers are unique and only grow, and a trial leaves the count only by failing, so
    at most n_trials trials ever settle."""
    from optuna.trial import TrialState

    states = tuple(TrialState[s] for s in _COUNTED)
    ahead = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=states))
    if ahead >= n_trials:
        trial.set_user_attr("surplus", True)
        raise _Surplus(f"trial {trial.number} found the budget of {n_trials} trials taken")


def _twin(study: optuna.Study, trial: optuna.Trial):
    """An earlier settled trial with the same parameters, if any."""
    from optuna.trial import TrialState

    settled = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return next((t for t in settled if t.params == trial.params and "fold_scores" in t.user_attrs), None)


def _sampler(seed: int, trial_number: int, n_trials: int):
    """TPE seeded per trial number: one worker repeats exactly, and workers that join a study do not
    all draw the same startup points. Startup trials scale down with small budgets (TPE's default of
    10 random ones would be the whole of a 6-trial search)."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed * 1_000_003 + trial_number, constant_liar=True,
                                      n_startup_trials=max(2, min(10, n_trials // 3)))


def _pruner(name: str, n_trials: int):
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    # a fold's running mean below the median of earlier trials at that fold stops the trial
    return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, n_trials // 4)), n_warmup_steps=0)


def run_study(inputs: SearchInputs, spec: ProblemSpec, candidate: CandidateSpec, seed: int, n_trials: int,
              storage: str | None = None, name: str | None = None) -> optuna.Study:
    """Join (or create) the study and run trials until it holds n_trials settled ones."""
    import optuna
    from optuna.trial import TrialState

    from ml_assets.core.training import build_pipeline

    t = spec.training
    url = storage_url(storage)
    study = optuna.create_study(
        storage=_storage(url, t.optuna_heartbeat_seconds), direction="maximize", load_if_exists=True,
        study_name=name or study_name(inputs, spec, candidate, seed, n_trials), pruner=_pruner(t.optuna_pruner, n_trials),
        sampler=_sampler(seed, 0, n_trials))
    space = {key: dimension(value) for key, value in candidate.search_space.items()}
    x, y = inputs.frame[spec.feature_columns], inputs.frame[spec.data.target]
    folds = _folds(inputs, spec)
    scorer = get_scorer(t.primary_metric)
    base = build_pipeline(spec, candidate.estimator(seed))

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who ran (or abandoned) it
        _claim_slot(study, trial, n_trials)
        study.sampler = _sampler(seed, trial.number, n_trials)  # before the first suggest samples
        params = {key: _suggest(trial, key, dim) for key, dim in space.items()}
        if (twin := _twin(study, trial)) is not None:  # TPE repeats points of small discrete spaces: no refit
            trial.set_user_attr("duplicate_of", twin.number)
            trial.set_user_attr("fold_scores", twin.user_attrs["fold_scores"])
            if twin.state == TrialState.PRUNED:
                raise optuna.TrialPruned()
            return twin.value
        pipeline, scores = clone(base).set_params(**{f"model__{k}": v for k, v in params.items()}), []
        for step, (fit, val) in enumerate(folds):
            model = clone(pipeline).fit(x.iloc[fit], y.iloc[fit])
            scores.append(float(scorer(model, x.iloc[val], y.iloc[val])))
            trial.set_user_attr("fold_scores", scores)
            if step < len(folds) - 1:  # after the last fold the trial is done: nothing left to save
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return float(np.mean(scores))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        while True:
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and queued again
            counts = {s: len(study.get_trials(deepcopy=False, states=(TrialState[s],))) for s in _COUNTED}
            if counts["COMPLETE"] + counts["PRUNED"] >= n_trials:
                return study
            if sum(counts.values()) < n_trials or counts["WAITING"]:
                try:
                    study.optimize(objective, n_trials=1, catch=(_Surplus,))  # a queued retry first, else a new trial
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # this worker stalled past the grace period: its trial was failed and queued again
            else:  # the rest of the budget is running elsewhere: wait until it settles or goes stale
                time.sleep(t.optuna_heartbeat_seconds)


def optuna_search(inputs: SearchInputs, spec: ProblemSpec, candidate: CandidateSpec, seed: int, n_trials: int,
                  ) -> tuple[dict, list[float], Pipeline]:
    """(best parameters, their fold scores, the best pipeline fit on the train split)."""
    from ml_assets.core.training import build_pipeline

    best = run_study(inputs, spec, candidate, seed, n_trials).best_trial
    space = {key: dimension(value) for key, value in candidate.search_space.items()}
    params = {key: _chosen(dim, best.params[key]) for key, dim in space.items()}
    estimator = build_pipeline(spec, candidate.estimator(seed)).set_params(
        **{f"model__{k}": v for k, v in params.items()}).fit(inputs.train[spec.feature_columns],
                                                               inputs.train[spec.data.target])
    return params, list(best.user_attrs["fold_scores"]), estimator


def _chosen(dim: tuple, stored: Any) -> Any:
    """A stored parameter as the estimator takes it (objects were stored by repr)."""
    if dim[0] == "categorical" and not all(isinstance(c, _PRIMITIVE) for c in dim[1]):
        return dict(zip(map(repr, dim[1]), dim[1]))[stored]
    return stored
