"""One Optuna search worker, as a separate process: `python -m ml_assets_tests.optuna_worker OUT.json`.

Every worker builds the same training set and calls `search_candidate`, so all of them join the one
study in ML_ASSETS_OPTUNA_STORAGE; each writes the result it returns to OUT.json."""

import dataclasses
import json
import sys
import time

from scipy.stats import loguniform
from sklearn.linear_model import LogisticRegression

from ml_assets.core.datasets import build_training_set
from ml_assets.core.training import prepare_search, search_candidate
from ml_assets.problem import CandidateSpec
from ml_assets_tests.core.churn_data import SMALL_CHURN, churn_frames

N_TRIALS = 6


class SlowLogisticRegression(LogisticRegression):
    """A fit that takes a second, as a real model's does: a trial is RUNNING long enough to be
    caught (and killed) mid-way, without burning the shared CPU."""

    def fit(self, X, y, sample_weight=None):
        time.sleep(1.0)
        return super().fit(X, y, sample_weight)


CANDIDATE = CandidateSpec("slow_logistic", lambda seed: SlowLogisticRegression(max_iter=500, random_state=seed),
                          {"C": loguniform(1e-3, 1e2)})
# no pruning: every trial runs to the end, so COMPLETE trials are exactly the budget
SPEC = SMALL_CHURN.evolve(search="optuna", optuna_pruner="none", optuna_heartbeat_seconds=2, candidates=(CANDIDATE,))


def main(out: str) -> None:
    inputs = prepare_search(build_training_set(*churn_frames(days=10, rows=250), SPEC), SPEC, seed=0)
    result, _ = search_candidate(inputs, SPEC, CANDIDATE, seed=0, n_iter=N_TRIALS)
    with open(out, "w") as file:
        json.dump({k: v for k, v in dataclasses.asdict(result).items() if k != "folds"}, file)


if __name__ == "__main__":
    main(sys.argv[1])
