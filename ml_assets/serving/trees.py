"""A numpy replay of a fitted HistGradientBoosting model, for the small batches of online scoring.

scikit-learn predicts tree by tree: one Cython call (and OpenMP region) per tree, ~85 per request
batch for the demo's model, ~0.7 ms of CPU even for a single row. Here every tree of the ensemble
is walked at once, one level per step: the split decisions of all nodes are one gather and one
comparison per batch, and each level is three array operations, whatever the number of trees
(~0.08 ms for one row). That work grows with rows x nodes, so batches of more than `max_rows`
rows (where scikit-learn's fixed cost is shared by enough rows) go to scikit-learn's own predictor.

The replay reads the fitted trees (`_predictors`, `_baseline_prediction`: scikit-learn exposes no
public accessor for them), so it is only ever used once `compiled.compile_pipeline` has checked it
reproduces the pipeline's own output; categorical splits and non-identity regression links are not
replayed (`Unsupported`: the model keeps scikit-learn's predict).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

IDENTITY_LOSSES = {"squared_error", "absolute_error", "quantile"}


class Unsupported(ValueError):
    pass


class TreeEnsemble:
    """`predict_proba` / `predict` of a fitted HistGradientBoosting{Classifier,Regressor} on float64 X."""

    def __init__(self, model, max_rows: int = 48):
        predictors, baseline = model._predictors, np.asarray(model._baseline_prediction, dtype=float)
        self.model, self.max_rows = model, max_rows
        self.classes_ = getattr(model, "classes_", None)
        self.per_iteration = len(predictors[0]) if predictors else 1
        if self.classes_ is None and getattr(model, "loss", None) not in IDENTITY_LOSSES:
            raise Unsupported(f"regression loss {getattr(model, 'loss', None)!r}: link not replayed")
        if self.classes_ is not None and len(self.classes_) > 2 and self.per_iteration != len(self.classes_):
            raise Unsupported("multiclass model without one tree per class")
        trees = [tree for iteration in predictors for tree in iteration]
        if any(tree.nodes["is_categorical"].any() for tree in trees):
            raise Unsupported("categorical splits")
        self.baseline = baseline.reshape(-1)  # one per tree of an iteration
        sizes = [len(tree.nodes) for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([tree.nodes for tree in trees]) if trees else np.empty(0)
        shift = np.repeat(offsets, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        index = np.arange(len(nodes), dtype=np.intp)
        left = np.where(leaf, index, nodes["left"].astype(np.intp) + shift)  # leaves stay where they are
        right = np.where(leaf, index, nodes["right"].astype(np.intp) + shift)
        self.children = np.stack([right, left], axis=1).ravel()  # [2 * node + went_left]
        self.feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(float)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.value = nodes["value"].astype(float)
        self.roots = offsets
        self.is_leaf = leaf
        self.depth = int(nodes["depth"].max()) if len(nodes) else 0
        self.n_nodes = len(nodes)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """(n, trees per iteration) raw predictions, summed tree after tree as scikit-learn does."""
        x = np.asarray(x, dtype=float)
        n = len(x)
        if n > self.max_rows:  # the replay's cost grows with rows x nodes, scikit-learn's hardly at all
            return self.model._raw_predict(x)
        values = np.take(x, self.feature, axis=1)  # (n, nodes): every node's split value for every row
        left = values <= self.threshold
        missing = np.isnan(values)
        if missing.any():  # NaN compares False: it goes where the split sent missing values in training
            left = np.where(missing, self.missing_left, left)
        decisions = left.ravel().view(np.uint8)
        row_base = (np.arange(n, dtype=np.intp) * self.n_nodes)[:, None]
        node = np.broadcast_to(self.roots, (n, len(self.roots)))
        for level in range(1, self.depth + 1):
            node = self.children.take(2 * node + decisions.take(row_base + node))
            if level % 4 == 0 and self.is_leaf.take(node).all():  # most paths are shorter than the deepest
                break
        leaves = self.value[node].reshape(n, -1, self.per_iteration)  # (n, iterations, k)
        start = np.broadcast_to(self.baseline, (n, 1, self.per_iteration))
        return np.cumsum(np.concatenate([start, leaves], axis=1), axis=1)[:, -1, :]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raw = self.raw(x)
        if self.per_iteration == 1:
            positive = expit(raw[:, 0])
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.classes_ is None:
            return self.raw(x)[:, 0]
        return np.asarray(self.classes_)[self.predict_proba(x).argmax(axis=1)]


def replay(model):
    """The numpy replay of a HistGradientBoosting model, or `model` itself for any other estimator."""
    if type(model).__name__ not in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        return model
    try:
        return TreeEnsemble(model)
    except (Unsupported, AttributeError, KeyError, IndexError, ValueError):
        return model
