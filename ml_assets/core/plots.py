"""Evaluation plots as PNG bytes (matplotlib Figure objects: no pyplot global state)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance

from ml_assets.core.evaluation import Evaluation
from ml_assets.core.profile import category_counts
from ml_assets.problem.spec import ProblemSpec


def markdown_image(png: bytes, title: str) -> str:
    """A PNG inlined in Markdown (asset metadata shows it without any file server)."""
    return f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def plot_curves(evaluation: Evaluation) -> dict[str, bytes]:
    titles = {"roc": ("ROC", "false positive rate", "true positive rate"),
              "pr": ("Precision-recall", "recall", "precision"),
              "calibration": ("Calibration", "mean predicted probability", "observed frequency")}
    plots = {}
    for name, (x, y) in evaluation.curves.items():
        fig = Figure(figsize=(4, 3.2))
        ax = fig.subplots()
        ax.plot(x, y, marker="." if name == "calibration" else None)
        if name != "pr":
            ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        title, xlabel, ylabel = titles[name]
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        plots[name] = _png(fig)
    return plots


def plot_confusion(evaluation: Evaluation) -> bytes | None:
    if evaluation.confusion is None:
        return None
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.subplots()
    ax.imshow(evaluation.confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(evaluation.confusion):
        ax.text(j, i, str(count), ha="center", va="center")
    ticks = range(len(evaluation.labels))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=evaluation.labels, yticklabels=evaluation.labels,
           xlabel="predicted", ylabel="actual", title="Confusion matrix")
    return _png(fig)


def feature_importance(pipeline, test: pd.DataFrame, spec: ProblemSpec, seed: int = 0,
                       max_rows: int = 2_000) -> pd.DataFrame:
    """Permutation importance of the raw input columns, scored by the primary metric."""
    sample = test.sample(min(len(test), max_rows), random_state=seed)
    result = permutation_importance(pipeline, sample[spec.feature_columns], sample[spec.data.target],
                                    scoring=spec.training.primary_metric, n_repeats=3, random_state=seed, n_jobs=1)
    return (pd.DataFrame({"feature": spec.feature_columns, "importance": result.importances_mean,
                          "std": result.importances_std})
            .sort_values("importance", ascending=False, ignore_index=True))


def plot_importance(importance: pd.DataFrame) -> bytes:
    top = importance.head(12).iloc[::-1]
    fig = Figure(figsize=(4.5, 3.6))
    ax = fig.subplots()
    ax.barh(top["feature"], top["importance"], xerr=top["std"])
    ax.set(title="Permutation importance", xlabel="drop in primary metric")
    return _png(fig)


def plot_drift(name: str, reference, current: pd.Series) -> bytes:
    """Reference vs current distribution of one column: shares per bin or per category."""
    fig = Figure(figsize=(4.5, 3))
    ax = fig.subplots()
    if hasattr(reference, "categories"):
        keys, counts, _ = category_counts(current)  # the drift test's own spelling of each category
        cur = pd.Series(counts / max(counts.sum(), 1), index=keys)
        ref = pd.Series(reference.counts / reference.counts.sum(), index=reference.categories)
        shares = pd.DataFrame({"reference": ref, "current": cur}).fillna(0.0).sort_values("reference")
        shares.tail(15).plot.barh(ax=ax)
    else:
        cur = current.to_numpy(dtype=float, na_value=np.nan)
        cur = cur[np.isfinite(cur)]
        edges = np.histogram_bin_edges(np.concatenate([reference.values, cur]), bins=30)
        for values, label in ((reference.values, "reference"), (cur, "current")):
            ax.hist(values, bins=edges, weights=np.full(len(values), 1 / max(len(values), 1)), alpha=0.5, label=label)
        ax.legend()
    ax.set_title(name)
    return _png(fig)


def plot_experiment(path: pd.DataFrame) -> bytes:
    """The sequential test over the experiment's days: the loss difference with its always-valid
    interval (a decision once it excludes 0), and the statistic against its boundary."""
    fig = Figure(figsize=(7.5, 3))
    left, right = fig.subplots(1, 2)
    days = pd.to_datetime(path["day"])
    finite = np.isfinite(path["lower"]) & np.isfinite(path["upper"])
    left.fill_between(days[finite], path["lower"][finite], path["upper"][finite], alpha=0.3, label="interval")
    left.plot(days, path["difference"], marker=".", label="challenger - champion loss")
    left.axhline(0, color="grey", linestyle=":")
    left.set(title="Loss difference", xlabel="day")
    left.legend(fontsize=7)
    right.plot(days, path["statistic"], marker=".", label="log mixture likelihood ratio")
    right.axhline(float(path["boundary"].iloc[0]), color="red", linestyle="--", label="boundary log(1/alpha)")
    right.set(title="Sequential test", xlabel="day")
    right.legend(fontsize=7)
    fig.autofmt_xdate()
    return _png(fig)
