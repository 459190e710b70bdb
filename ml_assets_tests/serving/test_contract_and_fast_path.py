"""The request contract comes from the pandera schema; the numpy fast path equals scikit-learn."""

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from ml_examples.bundled import DIABETES, WINE
from ml_examples.churn.problem import CHURN, CONTRACTS
from pydantic import ValidationError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ml_assets.core.training import build_pipeline
from ml_assets.serving.compiled import CompiledPipeline, compile_pipeline, edge_cases
from ml_assets.serving.contract import record_model
from ml_assets_tests.core.churn_data import churn_frames


def test_every_column_and_constraint_of_the_schema_reaches_the_request_model():
    schema = CHURN.input_schema
    properties = record_model(schema, "R").model_json_schema()["properties"]
    assert set(properties) == set(schema.columns)
    assert properties["contract"]["enum"] == CONTRACTS
    assert properties["tenure_months"]["minimum"] == 0 and properties["tenure_months"]["maximum"] == 600
    assert properties["monthly_charges"]["exclusiveMinimum"] == 0
    assert properties["customer_id"]["maxLength"] == 64 and properties["region"]["pattern"].startswith("^[a-z]")
    assert {"type": "null"} in properties["total_charges"]["anyOf"]  # nullable in the schema


def test_a_static_problem_serves_its_features_without_the_target():
    model = record_model(WINE.input_schema, "Wine")
    assert WINE.data.target not in model.model_fields and "alcohol" in model.model_fields


def test_a_check_without_a_request_equivalent_fails_at_start_up():
    schema = pa.DataFrameSchema({"x": pa.Column(float, pa.Check(lambda s: s > 0, name="custom_positive"))})
    with pytest.raises(ValueError, match="custom_positive"):
        record_model(schema, "X")


def test_strictness_follows_the_schema():
    lax = record_model(pa.DataFrameSchema({"x": pa.Column(int)}, strict=False), "Lax")
    assert lax.model_validate({"x": 1, "y": 2}).x == 1
    with pytest.raises(ValidationError):
        record_model(pa.DataFrameSchema({"x": pa.Column(int)}, strict=True), "Strict").model_validate({"x": 1, "y": 2})


@pytest.fixture(scope="module")
def churn_data():
    features, labels = churn_frames(days=3, rows=300)
    return features.merge(labels, on=["customer_id", "snapshot_date"])


@pytest.mark.parametrize("family", [c.name for c in CHURN.training.candidates])
def test_the_fast_path_reproduces_every_churn_model_family(churn_data, family):
    candidate = next(c for c in CHURN.training.candidates if c.name == family)
    pipeline = build_pipeline(CHURN, candidate.estimator(0)).fit(churn_data[CHURN.feature_columns],
                                                                 churn_data[CHURN.data.target])
    x = churn_data[CHURN.feature_columns]
    compiled = compile_pipeline(pipeline, x.head(5), list(CHURN.data.categorical_features), list(CHURN.data.numeric_features),
                                CHURN.task)
    assert isinstance(compiled, CompiledPipeline)
    probe = edge_cases(x.sample(200, random_state=0), list(CHURN.data.categorical_features), list(CHURN.data.numeric_features))
    np.testing.assert_allclose(compiled.predict_proba(probe), pipeline.predict_proba(probe), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spec", [WINE, DIABETES], ids=["multiclass", "regression"])
def test_the_fast_path_covers_the_other_tasks(spec):
    data = spec.data.load_static()
    pipeline = build_pipeline(spec, spec.training.candidates[0].estimator(0)).fit(data[spec.feature_columns], data[spec.data.target])
    compiled = compile_pipeline(pipeline, data[spec.feature_columns].head(5), [], list(spec.data.numeric_features), spec.task)
    method = "predict" if spec.task == "regression" else "predict_proba"
    assert isinstance(compiled, CompiledPipeline)
    np.testing.assert_allclose(getattr(compiled, method)(data), getattr(pipeline, method)(data), rtol=1e-9)


def test_anything_unfamiliar_keeps_the_plain_pipeline(churn_data):
    pipeline = build_pipeline(CHURN, CHURN.training.candidates[0].estimator(0))
    pipeline.named_steps["features"].transformers[1][1].steps[1] = (
        "onehotencoder", OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop="first"))
    pipeline.fit(churn_data[CHURN.feature_columns], churn_data[CHURN.data.target])
    x = churn_data[CHURN.feature_columns].head(5)
    assert compile_pipeline(pipeline, x, list(CHURN.data.categorical_features), list(CHURN.data.numeric_features),
                            CHURN.task) is pipeline
    assert compile_pipeline(Pipeline([("model", pipeline[-1])]), x, [], [], CHURN.task).__class__ is Pipeline
    assert compile_pipeline(pipeline, pd.DataFrame(), [], [], CHURN.task) is pipeline  # nothing to verify with
