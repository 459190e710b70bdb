"""The service's numpy path (tree replay, columnwise features, request arrays) equals the pipeline."""

import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.problem import CHURN, build_churn_features, churn_feature_arrays
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from ml_assets.core.scoring import to_features
from ml_assets.core.training import build_pipeline
from ml_assets.mlflow.registry import LoadedModel
from ml_assets.serving.compiled import CompiledPipeline
from ml_assets.serving.contract import records_columns, records_frame
from ml_assets.serving.scorer import Scorer
from ml_assets.serving.trees import TreeEnsemble, replay
from ml_assets_tests.core.churn_data import churn_frames
from ml_assets_tests.registered import raw_records


def _x(rows: int = 600, features: int = 6, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, features))
    x[::7, 0] = np.nan  # missing values, so splits learn where they go (missing_go_to_left)
    x[::11, 3] = np.nan
    return x


@pytest.mark.parametrize("classes", [2, 3], ids=["binary", "multiclass"])
def test_the_tree_replay_reproduces_histgradientboosting_classifiers_with_missing_values(classes):
    x = _x()
    y = (np.nan_to_num(x[:, 0]) + x[:, 1] > 0).astype(int) + (classes == 3) * (x[:, 2] > 0.5)
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(x, y)
    assert isinstance(replay(model), TreeEnsemble)
    replayed = TreeEnsemble(model, max_rows=200)  # every probe row through the replay, none through sklearn
    probe = _x(200, seed=1)
    probe[:5] = np.nan  # whole rows missing
    np.testing.assert_allclose(replayed.predict_proba(probe), model.predict_proba(probe), rtol=1e-12, atol=1e-15)
    assert (replayed.predict(probe) == model.predict(probe)).all()


def test_the_tree_replay_reproduces_a_regressor_and_keeps_what_it_cannot_replay():
    x = _x()
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, np.nan_to_num(x[:, 0]) * 3 + x[:, 1])
    probe = _x(100, seed=2)
    np.testing.assert_allclose(TreeEnsemble(model, max_rows=100).predict(probe), model.predict(probe), rtol=1e-12)
    np.testing.assert_allclose(replay(model).predict(probe), model.predict(probe), rtol=1e-12)  # large: sklearn
    poisson = HistGradientBoostingRegressor(loss="poisson", max_iter=5).fit(x, np.abs(x[:, 1]))
    frame = pd.DataFrame({"a": pd.Categorical(np.where(x[:, 1] > 0, "u", "v")), "b": x[:, 2]})
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame, x[:, 1] > 0)
    logistic = LogisticRegression().fit(np.nan_to_num(x), x[:, 1] > 0)
    assert replay(poisson) is poisson and replay(categorical) is categorical and replay(logistic) is logistic


def test_columnwise_features_are_the_pandas_function():
    customers, _ = churn_frames(days=1, rows=200)
    customers.loc[customers.index[:3], "total_charges"] = np.nan
    customers["contract"] = customers["contract"].astype("category")
    frame = build_churn_features(customers)
    arrays = churn_feature_arrays({c: customers[c].to_numpy() for c in customers.columns})
    pd.testing.assert_frame_equal(frame, pd.DataFrame(arrays, index=customers.index))
    assert frame["contract"].map(type).eq(str).all()  # plain strings, as before, not categories


def test_request_arrays_are_the_request_frame_columns():
    scorer = Scorer(CHURN)
    raw = raw_records(12)
    raw[2]["total_charges"] = None  # a nullable column with a missing value
    records = [scorer.record_model.model_validate(r) for r in raw]
    frame, arrays = records_frame(records, CHURN.input_schema), records_columns(records, CHURN.input_schema)
    assert list(arrays) == list(frame.columns)
    for name, values in arrays.items():
        expected = frame[name].to_numpy()
        assert values.dtype == expected.dtype, name
        np.testing.assert_array_equal(values, expected)


def test_the_service_path_scores_requests_as_the_registered_pipeline_does():
    features, labels = churn_frames(days=3, rows=300)
    data = features.merge(labels, on=["customer_id", "snapshot_date"])
    pipeline = build_pipeline(CHURN, HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(
        data[CHURN.feature_columns], data[CHURN.data.target])
    scorer = Scorer(CHURN)
    model = scorer.prepare(LoadedModel(name="churn_model", version="1", pipeline=pipeline,
                                       example=data[CHURN.feature_columns].head(5), loaded_at=0.0))
    assert isinstance(model.predictor, CompiledPipeline) and isinstance(model.predictor.model, TreeEnsemble)
    raw = raw_records(50, day=2)
    raw[0]["total_charges"], raw[1]["tenure_months"] = None, 0
    records = [scorer.record_model.model_validate(r) for r in raw]
    score, label = scorer.score(model, scorer.arrays(records))  # what the service runs
    expected = pipeline.predict_proba(to_features(scorer.frame(records), CHURN))[:, 1]
    np.testing.assert_allclose(score, expected, rtol=1e-12)
    assert (label == (expected >= CHURN.decision_threshold)).all()


def test_request_arrays_take_missing_and_zoned_times_in_a_nullable_datetime_column():
    """A missing time is NaT and a zoned one is converted to naive UTC, as landed files are (a missing
    value once made this path fail on `None.tzinfo`)."""
    import pandera.pandas as pa

    from ml_assets.serving.contract import RecordColumns, record_model

    schema = pa.DataFrameSchema({"id": pa.Column(str), "seen": pa.Column("datetime64[ns]", nullable=True)})
    model = record_model(schema, "Seen")
    records = [model.model_validate({"id": str(i), "seen": seen}) for i, seen in
               enumerate(["2026-12-01T12:00:00+02:00", None, "2026-12-01T12:00:00"])]
    columns = RecordColumns(schema)(records)
    assert columns["seen"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(columns["seen"], np.array(["2026-12-01T10:00", "NaT", "2026-12-01T12:00"],
                                                            dtype="datetime64[ns]"))
    naive = RecordColumns(schema)(records[1:])  # no zoned time in the batch: the plain conversion
    np.testing.assert_array_equal(naive["seen"], np.array(["NaT", "2026-12-01T12:00"], dtype="datetime64[ns]"))
