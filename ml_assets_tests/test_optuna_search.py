"""The Optuna search on the machine's PostgreSQL: a TPE study that prunes on folds, joined by worker
processes, finishing its exact budget after one of them is killed mid-trial."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from scipy.stats import randint
from sklearn.model_selection import RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier

from ml_assets.core.datasets import build_training_set
from ml_assets.core.search import STORAGE_ENV
from ml_assets.core.training import build_pipeline, prepare_search, search_candidate
from ml_assets.problem import CandidateSpec
from ml_assets_tests.core.churn_data import SMALL_CHURN, churn_frames
from ml_assets_tests.optuna_worker import N_TRIALS
from ml_assets_tests.postgres import scratch_database, sqlalchemy_url
from ml_assets_tests.processes import stop

LOGISTIC = SMALL_CHURN.training.candidates[0]  # C ~ loguniform(1e-2, 1e2)
OPTUNA = SMALL_CHURN.evolve(search="optuna")


@pytest.fixture(scope="module")
def churn_set():
    return build_training_set(*churn_frames(days=10, rows=250), SMALL_CHURN)


@pytest.fixture(scope="module")
def database():
    with scratch_database("ml_assets_optuna_test") as name:
        yield name


@pytest.fixture
def storage(database, monkeypatch):
    """A fresh schema-less start per test: every study of the database is deleted first."""
    url = sqlalchemy_url(database)
    for summary in optuna.get_all_study_summaries(url):
        optuna.delete_study(study_name=summary.study_name, storage=url)
    monkeypatch.setenv(STORAGE_ENV, f"postgresql://postgres@127.0.0.1:5432/{database}")
    return url


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_the_default_search_is_the_randomized_search_unchanged(churn_set, monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert SMALL_CHURN.training.search == "random"
    inputs = prepare_search(churn_set, SMALL_CHURN, seed=3)
    result, _ = search_candidate(inputs, SMALL_CHURN, LOGISTIC, seed=3, n_iter=4, n_jobs=1)
    direct = RandomizedSearchCV(build_pipeline(SMALL_CHURN, LOGISTIC.estimator(3)), {"model__C": LOGISTIC.search_space["C"]},
                                n_iter=4, cv=inputs.cv, scoring="roc_auc", random_state=3, refit=False).fit(
        inputs.frame[SMALL_CHURN.feature_columns], inputs.frame["churned"])
    assert result.params == {"C": direct.best_params_["model__C"]}
    assert result.cv_score == direct.cv_results_["mean_test_score"][direct.best_index_]


def test_without_a_storage_the_study_is_in_memory_and_repeats_with_the_seed(churn_set, monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    inputs = prepare_search(churn_set, OPTUNA, seed=1)
    first, _ = search_candidate(inputs, OPTUNA, LOGISTIC, seed=1, n_iter=5)
    second, _ = search_candidate(inputs, OPTUNA, LOGISTIC, seed=1, n_iter=5)
    assert (first.params, first.cv_score, first.validation_score) == \
        (second.params, second.cv_score, second.validation_score)


def test_a_tpe_study_on_postgres_gives_a_candidate_result_like_the_random_search(churn_set, storage):
    inputs = prepare_search(churn_set, OPTUNA, seed=0)
    tpe, fitted = search_candidate(inputs, OPTUNA, LOGISTIC, seed=0, n_iter=6)
    random, _ = search_candidate(inputs, SMALL_CHURN, LOGISTIC, seed=0, n_iter=6, n_jobs=1)
    assert set(tpe.params) == {"C"} and 1e-2 <= tpe.params["C"] <= 1e2
    assert len(tpe.fold_scores) == len(random.fold_scores) == 2 and tpe.folds == random.folds
    assert tpe.cv_score == pytest.approx(np.mean(tpe.fold_scores)) and abs(tpe.validation_score - random.validation_score) < 0.02
    trials = _trials(storage)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert len(trials) == 6 and (best.params, best.value) == (tpe.params, pytest.approx(tpe.cv_score))
    assert fitted.predict_proba(inputs.validation[OPTUNA.feature_columns]).shape[1] == 2
    # the same inputs name the same study: a rerun resumes the finished one instead of starting anew
    again, _ = search_candidate(inputs, OPTUNA, LOGISTIC, seed=0, n_iter=6)
    assert again.params == tpe.params and len(_trials(storage)) == 6


@pytest.mark.slow
def test_pruning_stops_trials_below_the_median_before_their_last_fold(churn_set, storage):
    """Neighbour counts range from hopeless to good: trials whose running fold mean falls below the
    median of the finished trials at that fold stop early, and fewer folds are fit in all."""
    knn = CandidateSpec("knn", lambda seed: KNeighborsClassifier(), {"n_neighbors": randint(1, 120)})
    spec = SMALL_CHURN.evolve(search="optuna", cv_folds=3, candidates=(knn,))
    result, _ = search_candidate(prepare_search(churn_set, spec, seed=0), spec, knn, seed=0, n_iter=16)
    trials = _trials(storage)
    assert sum(t.state in (TrialState.PRUNED, TrialState.COMPLETE) for t in trials) == len(trials) == 16
    assert result.cv_score == max(t.value for t in trials if t.state == TrialState.COMPLETE)
    # a point TPE draws again is not fit again: it takes the earlier trial's outcome
    repeats = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert all(t.params == trials[t.user_attrs["duplicate_of"]].params for t in repeats)
    trials = [t for t in trials if t not in repeats]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and sum(len(t.user_attrs["fold_scores"]) for t in trials) < len(trials) * 3  # folds saved
    for trial in pruned:
        step = max(trial.intermediate_values)
        earlier = [t.intermediate_values[step] for t in complete if t.number < trial.number]
        assert len(trial.user_attrs["fold_scores"]) == step + 1 < 3 and trial.intermediate_values[step] < np.median(earlier)


def _start_worker(tmp_path: Path, name: str, env: dict) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / f"{name}.json"
    with open(tmp_path / f"{name}.log", "w") as log:  # a file, not a pipe nobody reads; the child keeps its copy
        process = subprocess.Popen([sys.executable, "-m", "ml_assets_tests.optuna_worker", str(out)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, out



def _finish(process: subprocess.Popen, out: Path, tmp_path: Path) -> dict:
    code = process.wait(timeout=600)
    assert code == 0, (tmp_path / f"{out.stem}.log").read_text()[-3000:]
    return json.loads(out.read_text())


def _wait_for(url: str, condition, process: subprocess.Popen, deadline_s: float = 300):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        names = optuna.get_all_study_names(url)
        found = condition(_trials(url)) if names else None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the study never reached the expected state")


def _owner(trial, process: subprocess.Popen) -> bool:
    return trial.user_attrs.get("worker", "").endswith(f":{process.pid}")


def _check_budget(trials: list) -> list:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS and all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert len({t.number for t in complete}) == len({t.params["C"] for t in complete}) == N_TRIALS
    return complete


@pytest.mark.slow
def test_two_worker_processes_join_one_study_and_both_run_trials(storage, tmp_path):
    env = {**os.environ}
    workers = [_start_worker(tmp_path, name, env) for name in ("a", "b")]
    try:
        results = [_finish(process, out, tmp_path) for process, out in workers]
    finally:
        for process, _ in workers:
            stop(process, 10)
    complete = _check_budget(_trials(storage))
    assert all(any(_owner(t, process) for t in complete) for process, _ in workers)
    assert results[0]["params"] == results[1]["params"] and results[0]["cv_score"] == results[1]["cv_score"]


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_no_trial_and_duplicates_none(storage, tmp_path):
    env = {**os.environ}
    (victim, _), (survivor, out) = workers = [_start_worker(tmp_path, name, env) for name in ("victim", "survivor")]
    try:
        # kill while the victim holds a RUNNING trial, after the study has made some progress
        running = _wait_for(storage, lambda trials: any(
            t.state == TrialState.COMPLETE and _owner(t, victim) for t in trials) and [
            t for t in trials if t.state == TrialState.RUNNING and _owner(t, victim)], victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        result = _finish(survivor, out, tmp_path)
    finally:
        for process, _ in workers:
            stop(process, 10)
    trials = {t.number: t for t in _trials(storage)}
    killed = trials[running[0].number]
    assert killed.state == TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params and retries[0].state == TrialState.COMPLETE
    complete = _check_budget(list(trials.values()))
    assert any(_owner(t, survivor) for t in complete) and any(_owner(t, victim) for t in complete)
    assert result["cv_score"] == max(t.value for t in complete)
