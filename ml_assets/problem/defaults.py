"""Per-task defaults: a problem that names only its data still trains, gates and is monitored."""

from __future__ import annotations

from ml_assets.problem.sections import CandidateSpec

_PRIMARY = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "neg_root_mean_squared_error"}


def default_primary_metric(task: str) -> str:
    """A metric computable from prediction rows, so realized performance can track it."""
    return _PRIMARY[task]


def default_candidates(task: str) -> tuple[CandidateSpec, ...]:
    """A linear model and gradient boosting: a strong baseline pair for tabular data."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    boosting = {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31], "min_samples_leaf": [20, 50]}
    if task == "regression":
        return (CandidateSpec("ridge", lambda seed: Ridge(random_state=seed), {"alpha": [0.1, 1.0, 10.0]}),
                CandidateSpec("hist_gradient_boosting",
                              lambda seed: HistGradientBoostingRegressor(random_state=seed), boosting))
    return (CandidateSpec("logistic_regression", lambda seed: LogisticRegression(max_iter=2000, random_state=seed),
                          {"C": [0.1, 1.0, 10.0]}),
            CandidateSpec("hist_gradient_boosting",
                          lambda seed: HistGradientBoostingClassifier(random_state=seed), boosting))
