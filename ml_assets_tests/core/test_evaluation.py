
import numpy as np
import pandas as pd
import pytest
from ml_examples.bundled import DIABETES, WINE
from sklearn import metrics

from ml_assets.core.datasets import build_training_set, split_static
from ml_assets.core.evaluation import evaluate_model
from ml_assets.core.metrics import metric_for_scorer
from ml_assets.core.performance import realized_metric_list
from ml_assets.core.plots import (
    feature_importance,
    plot_confusion,
    plot_curves,
    plot_importance,
)
from ml_assets.core.training import train_candidates
from ml_assets_tests.core.churn_data import SMALL_CHURN, churn_frames

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def churn_model():
    frame = build_training_set(*churn_frames(days=10, rows=250), SMALL_CHURN)
    return train_candidates(frame, SMALL_CHURN, log=lambda _: None).pipeline, frame[frame.split == "test"]


def test_binary_metrics_match_scikit_learn(churn_model):
    pipeline, test = churn_model
    result = evaluate_model(pipeline, test, SMALL_CHURN)
    score = pipeline.predict_proba(test[SMALL_CHURN.feature_columns])[:, 1]
    y = test["churned"]
    assert result.metrics["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, score))
    assert result.metrics["primary_roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert result.metrics["brier"] == pytest.approx(metrics.brier_score_loss(y, score))
    assert result.metrics["recall"] == pytest.approx(metrics.recall_score(y, score >= 0.5))
    assert result.confusion.sum() == len(test) and set(result.curves) == {"roc", "pr", "calibration"}


def test_slices_cover_every_segment_value(churn_model):
    pipeline, test = churn_model
    slices = evaluate_model(pipeline, test, SMALL_CHURN).slices
    assert set(slices["segment"]) == {"contract", "region"}
    for segment in ("contract", "region"):
        assert slices.loc[slices.segment == segment, "rows"].sum() == len(test)


def test_a_one_class_slice_has_no_auc_instead_of_an_error(churn_model):
    pipeline, test = churn_model
    odd = test.copy()
    odd.loc[odd.region == "north", "churned"] = 0
    slices = evaluate_model(pipeline, odd, SMALL_CHURN).slices
    assert np.isnan(slices.loc[(slices.segment == "region") & (slices.value == "north"), "roc_auc"].item())


def test_empty_test_split_is_an_error(churn_model):
    with pytest.raises(ValueError, match="test split is empty"):
        evaluate_model(churn_model[0], churn_model[1].iloc[0:0], SMALL_CHURN)


@pytest.mark.parametrize("spec, keys", [(WINE, {"accuracy", "f1_macro", "log_loss", "roc_auc_ovr"}),
                                        (DIABETES, {"rmse", "mae", "r2"})])
def test_multiclass_and_regression_metrics(spec, keys):
    data = split_static(spec.data.load_static(), spec, seed=0)
    pipeline = train_candidates(data, spec, log=lambda _: None).pipeline
    result = evaluate_model(pipeline, data[data.split == "test"], spec)
    assert keys <= set(result.metrics) and f"primary_{spec.training.primary_metric}" in result.metrics
    assert (result.confusion is None) == (spec.task == "regression")


def test_plots_are_pngs(churn_model):
    pipeline, test = churn_model
    result = evaluate_model(pipeline, test, SMALL_CHURN)
    plots = {**plot_curves(result), "confusion": plot_confusion(result)}
    importance = feature_importance(pipeline, test, SMALL_CHURN, max_rows=300)
    plots["importance"] = plot_importance(importance)
    assert all(png.startswith(PNG) for png in plots.values())
    assert list(importance.columns) == ["feature", "importance", "std"]
    assert set(importance["feature"]) == set(SMALL_CHURN.feature_columns)
    assert isinstance(importance, pd.DataFrame) and importance["importance"].is_monotonic_decreasing


@pytest.mark.parametrize("scorer", ["roc_auc", "average_precision", "neg_log_loss", "neg_brier_score", "f1"])
def test_the_primary_metric_is_logged_under_the_name_monitoring_reads(churn_model, scorer):
    """Realized performance reads the baseline as test_<primary_metric_name>: that name must be an
    evaluation metric, equal (errors negated) to what the primary scorer computes."""
    pipeline, test = churn_model
    spec = SMALL_CHURN.evolve(primary_metric=scorer)
    result = evaluate_model(pipeline, test, spec)
    metric = metric_for_scorer("binary", scorer)
    assert metric.as_score(result.metrics[spec.primary_metric_name]) == \
        pytest.approx(result.metrics[f"primary_{scorer}"])
    assert {m.name for m in realized_metric_list("binary")} <= set(result.metrics)


@pytest.mark.parametrize("spec", [WINE, DIABETES], ids=lambda s: s.task)
def test_static_evaluation_names_match_the_realized_ones(spec):
    data = split_static(spec.data.load_static(), spec, seed=0)
    pipeline = train_candidates(data, spec.evolve(search_iterations=1), log=lambda _: None).pipeline
    result = evaluate_model(pipeline, data[data.split == "test"], spec)
    assert {m.name for m in realized_metric_list(spec.task)} <= set(result.metrics)
    metric = metric_for_scorer(spec.task, spec.training.primary_metric)
    assert metric.as_score(result.metrics[spec.primary_metric_name]) == \
        pytest.approx(result.metrics[f"primary_{spec.training.primary_metric}"])
