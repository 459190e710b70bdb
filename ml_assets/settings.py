"""Where things live, resolved from the environment at call time (never at import time).

Every default sits under ML_ASSETS_HOME (default: the current directory, i.e. the project root
when run through `make` or `dagster dev`), so nothing is written outside the project by default.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml_assets.core.storage import Location, as_path


def project_home() -> Path:
    return Path(os.environ.get("ML_ASSETS_HOME", os.getcwd())).resolve()


def data_dir() -> Path:
    return Path(os.environ.get("ML_ASSETS_DATA_DIR", project_home() / "data"))


def landing_dir() -> Location:
    """A local folder (`Path`) or an object-storage URL such as s3://bucket/landing (`UPath`)."""
    return as_path(os.environ.get("ML_ASSETS_LANDING_DIR", data_dir() / "landing"))


def archive_dir() -> Location:
    """A local folder (`Path`) or an object-storage URL such as s3://bucket/raw (`UPath`)."""
    return as_path(os.environ.get("ML_ASSETS_ARCHIVE_DIR", data_dir() / "raw"))


def warehouse_dir() -> str:
    """Root of the Parquet tables; any universal-pathlib URL works (s3://…, gs://…)."""
    return os.environ.get("ML_ASSETS_WAREHOUSE", str(data_dir() / "warehouse"))


def prediction_log_url() -> str | None:
    """ML_ASSETS_PREDICTION_LOG_URL: object storage (s3://bucket/prediction_log) that the scoring service
    ships its compacted prediction log to and the served-predictions asset reads; unset: local disk only."""
    return os.environ.get("ML_ASSETS_PREDICTION_LOG_URL") or None


def partitions_start() -> str:
    return os.environ.get("ML_ASSETS_PARTITIONS_START", "2024-01-01")


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else the project's embedded store (never MLflow's own default,
    which is a ./mlflow.db in whatever the current directory is)."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir() / 'mlflow' / 'mlflow.db'}")


def mlflow_registry_uri(tracking_uri: str | None = None) -> str:
    """MLFLOW_REGISTRY_URI when set, else the tracking store (MLflow's own convention)."""
    return os.environ.get("MLFLOW_REGISTRY_URI", tracking_uri or mlflow_tracking_uri())


def mlflow_artifact_location(tracking_uri: str | None = None) -> str | None:
    """Where a new experiment stores artifacts: ML_ASSETS_MLFLOW_ARTIFACTS when set; None for a
    tracking server, which then decides (with `--serve-artifacts` clients upload over HTTP and never
    need the store's path); else the project's data/mlflow/artifacts."""
    if "ML_ASSETS_MLFLOW_ARTIFACTS" in os.environ:
        return os.environ["ML_ASSETS_MLFLOW_ARTIFACTS"]
    if (tracking_uri or mlflow_tracking_uri()).startswith(("http://", "https://")):
        return None
    return (data_dir() / "mlflow" / "artifacts").as_uri()
