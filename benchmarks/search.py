"""Hyperparameter search quality vs cost: the randomized search vs the Optuna TPE study (pruning on
folds), the same budget in trials per family, on a churn training window from the simulated world.
Both run what training runs (`train_candidates`: every family, time-ordered CV, pick on validation)
in one process with n_jobs=1 and one BLAS/OpenMP thread, so the process's CPU time is the search's
work (not OpenMP threads spinning on a shared machine). The studies go to a temporary SQLite file,
where their pruned and repeated trials are counted.

    .venv/bin/python benchmarks/search.py [--days 60] [--rows 300] [--trials 10] [--seeds 0 1 2]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import optuna
import pandas as pd
from ml_examples.churn.problem import CHURN
from ml_examples.churn.simulation import WorldConfig, simulate_day
from threadpoolctl import threadpool_limits

from ml_assets.core.datasets import build_training_set
from ml_assets.core.search import STORAGE_ENV
from ml_assets.core.training import train_candidates


def churn_window(days: int, rows: int) -> pd.DataFrame:
    """`days` simulated days of features and labels, as the training asset's window sees them."""
    cfg = WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=rows * 5, dirty_rate=0.0)
    features, labels = [], []
    for day in range(days):
        customers, truth = simulate_day(cfg, day)
        for frame in (customers, truth):
            frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
        features.append(CHURN.features_of(customers))
        labels.append(truth)
    spec = CHURN.evolve(window_days=days)
    return build_training_set(pd.concat(features, ignore_index=True), pd.concat(labels, ignore_index=True), spec)


def run(training_set: pd.DataFrame, search: str, seed: int, trials: int) -> tuple[float, float, float, str]:
    """(winner's validation score, CPU s, wall s, winner)."""
    spec = CHURN.evolve(window_days=training_set["snapshot_date"].nunique(), search=search, search_iterations=trials)
    cpu, wall = time.process_time(), time.perf_counter()
    result = train_candidates(training_set, spec, seed=seed, n_iter=trials, n_jobs=1, log=lambda _: None)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    best = next(c for c in result.candidates if c.name == result.best)
    return best.validation_score, cpu, wall, result.best


def trial_counts(url: str) -> str:
    """Pruned trials and repeated points (not fit again) over every study of the last run."""
    pruned = repeated = 0
    for name in optuna.get_all_study_names(url):
        for trial in optuna.load_study(study_name=name, storage=url).get_trials():
            repeated += "duplicate_of" in trial.user_attrs
            pruned += trial.state == optuna.trial.TrialState.PRUNED and "duplicate_of" not in trial.user_attrs
        optuna.delete_study(study_name=name, storage=url)
    return f"{pruned} pruned, {repeated} repeated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--rows", type=int, default=300, help="rows per simulated day")
    parser.add_argument("--trials", type=int, default=10, help="trials per candidate family, both searches")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    # a local SQLite file (not a server round trip) keeps the studies to count their trials
    folder = tempfile.mkdtemp(prefix="search_bench_")
    url = f"sqlite:///{folder}/studies.db"
    os.environ[STORAGE_ENV] = url
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threadpool_limits(1)
    training_set = churn_window(args.days, args.rows)
    print(f"{len(training_set):,} rows, {args.days} days ({training_set['split'].value_counts().to_dict()}), "
          f"{args.trials} trials per family, seeds {args.seeds}", flush=True)
    print("| seed | search | best validation roc_auc | winner | CPU s | wall s | trials |\n|---|---|---|---|---|---|---|")
    rows = {"random": [], "optuna": []}
    for seed in args.seeds:
        for search, results in rows.items():  # interleaved: both searches see the same machine load
            score, cpu, wall, winner = run(training_set, search, seed, args.trials)
            results.append((score, cpu, wall))
            trials = trial_counts(url) if search == "optuna" else ""
            print(f"| {seed} | {search} | {score:.4f} | {winner} | {cpu:.1f} | {wall:.1f} | {trials} |", flush=True)
    print("\n| search | median validation roc_auc | median CPU s | median wall s |\n|---|---|---|---|")
    for search, values in rows.items():
        score, cpu, wall = (statistics.median(v) for v in zip(*values))
        print(f"| {search} | {score:.4f} | {cpu:.1f} | {wall:.1f} |")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
