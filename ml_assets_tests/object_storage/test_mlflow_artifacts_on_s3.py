"""MLflow with its artifact store on S3: `mlflow server --artifacts-destination s3://…` with
MLFLOW_S3_ENDPOINT_URL at the local S3 server. Clients register and load a model over HTTP only:
they hold no S3 credentials, the server alone talks to the bucket."""

import numpy as np
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.mlflow.resource import MlflowResource
from ml_assets_tests.conftest import MLFLOW_VARIABLES, _environ
from ml_assets_tests.core.churn_data import churn_frames
from ml_assets_tests.mlflow_server import mlflow_server
from ml_assets_tests.registered import fit_churn, register
from ml_assets_tests.s3 import CREDENTIALS

pytestmark = pytest.mark.slow
S3_VARIABLES = (*CREDENTIALS, "AWS_ENDPOINT_URL")


def test_a_model_registered_over_http_is_stored_on_s3_and_loads_back(s3, tmp_path):
    artifacts = f"{s3.folder()}/mlflow"
    server_env = {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3.url}
    with mlflow_server(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts, env=server_env) as url, \
            _environ({**dict.fromkeys(MLFLOW_VARIABLES), **dict.fromkeys(S3_VARIABLES), "MLFLOW_TRACKING_URI": url}):
        pipeline = fit_churn()
        version = register(pipeline)  # logged and registered through the server
        store = MlflowResource(experiment_name="tests")
        assert store.client().get_experiment_by_name("tests").artifact_location.startswith("mlflow-artifacts:")
        loaded = store.load_version(CHURN.registered_model_name, version)  # downloaded through the server
        features = churn_frames(days=1, rows=50)[0][CHURN.feature_columns]
        np.testing.assert_array_equal(loaded.pipeline.predict_proba(features), pipeline.predict_proba(features))
    s3.fs.invalidate_cache()
    stored = s3.fs.find(artifacts)
    assert [p for p in stored if p.endswith("/model/MLmodel")] and [p for p in stored if p.endswith(".pkl")]
    assert not list(tmp_path.rglob("MLmodel"))  # nothing on local disk: the bucket holds the model
