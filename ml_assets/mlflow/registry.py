"""Deployment state lives in the MLflow model registry, as aliases (not the deprecated stages).

- `challenger`: the newest registered candidate (shadow-scored by the service when asked);
- `champion`: what batch and online scoring use; moved only by a gated promotion or a rollback;
- `previous`: the champion before the current one, i.e. where a rollback goes.

Every alias move is a single registry write, so a process killed between two writes leaves
`champion` pointing at a complete, servable version. No Dagster here.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import mlflow.artifacts
import mlflow.sklearn
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from ml_assets import settings

CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous", "challenger"


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    pipeline: object
    loaded_at: float
    example: pd.DataFrame | None = None  # the input example logged with the model
    predictor: object = None  # what scores requests: the pipeline, or a verified fast form of it

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def client(tracking_uri: str | None = None, registry_uri: str | None = None) -> MlflowClient:
    """Explicit stores, never MLflow's process-global default (which would silently be ./mlflow.db).
    Inside Dagster use the `mlflow` resource (MlflowResource.client), which resolves the same way."""
    tracking = tracking_uri or settings.mlflow_tracking_uri()
    return MlflowClient(tracking, registry_uri or settings.mlflow_registry_uri(tracking))


def load_version(name: str, version: str, tracking_uri: str | None = None,
                 registry_uri: str | None = None) -> LoadedModel:
    """The registered pipeline, fetched from the registry's artifact store into memory.

    The version's storage location is resolved through an explicit client: MLflow resolves a
    `models:/` URI against its *global* registry URI whatever `registry_uri` it is given."""
    tracking = tracking_uri or settings.mlflow_tracking_uri()
    source = client(tracking, registry_uri).get_model_version_download_uri(name, str(version))
    with tempfile.TemporaryDirectory(prefix="ml_assets_model_") as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp,
                                                   tracking_uri=tracking)
        pipeline = mlflow.sklearn.load_model(path)
        try:
            example = Model.load(path).load_input_example(path)
        except Exception:  # an example is a nicety (fast-path verification), never a load failure
            example = None
        return LoadedModel(name, str(version), pipeline, time.time(), example if isinstance(example, pd.DataFrame)
                           else None, pipeline)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points at, None when the alias (or the model) does not exist yet.
    Any other registry error (unreachable, auth) propagates: callers decide what degraded means."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def version_url(name: str, version: str) -> str:
    base = os.environ.get("ML_ASSETS_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")
    return f"{base}/#/models/{name}/versions/{version}"


@dataclass(frozen=True)
class AliasMove:
    name: str
    champion: str
    previous: str | None  # the champion before this move


def promote(client: MlflowClient, name: str, version: str) -> AliasMove:
    """Make `version` the champion; the old champion becomes `previous`. `previous` is written
    first: killed in between, both aliases point at the old champion and nothing is lost."""
    old = alias_version(client, name, CHAMPION)
    if old == str(version):
        return AliasMove(name, old, alias_version(client, name, PREVIOUS))
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    _stamp(client, name, str(version), "promoted_at")
    if alias_version(client, name, CHALLENGER) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)
    return AliasMove(name, str(version), old)


def _stamp(client: MlflowClient, name: str, version: str, tag: str) -> None:
    """`tag` as epoch seconds (what ordering reads) and `<tag>_utc` as ISO 8601 (what people read)."""
    now = time.time()
    client.set_model_version_tag(name, version, tag, f"{now:.3f}")
    client.set_model_version_tag(name, version, f"{tag}_utc",
                                 datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"))


def rollback(client: MlflowClient, name: str, reason: str = "") -> AliasMove:
    """Move `champion` back to `previous`, and `previous` further back to the champion before that
    (the newest earlier promoted version that was not rolled back), so rollbacks can be repeated."""
    current, target = alias_version(client, name, CHAMPION), alias_version(client, name, PREVIOUS)
    if target is None or target == current:
        raise LookupError(f"{name}: no previous champion to roll back to (champion is v{current})")
    client.set_registered_model_alias(name, CHAMPION, target)
    _stamp(client, name, current, "rolled_back_at")
    client.set_model_version_tag(name, current, "rollback_reason", reason or "manual rollback")
    earlier = _promoted_before(client, name, target)
    if earlier is None:
        client.delete_registered_model_alias(name, PREVIOUS)
    else:
        client.set_registered_model_alias(name, PREVIOUS, earlier)
    return AliasMove(name, target, current)


def _promoted_before(client: MlflowClient, name: str, version: str) -> str | None:
    versions = client.search_model_versions(f"name = '{name}'")
    since = float(client.get_model_version(name, version).tags.get("promoted_at", "inf"))
    candidates = [v for v in versions if "promoted_at" in v.tags and "rolled_back_at" not in v.tags
                  and v.version != version and float(v.tags["promoted_at"]) < since]
    return str(max(candidates, key=lambda v: float(v.tags["promoted_at"])).version) if candidates else None


def version_metrics(client: MlflowClient, name: str, version: str) -> dict[str, float]:
    """Metrics of the run that registered a version (its evaluation logs `test_*` there too)."""
    return client.get_run(client.get_model_version(name, str(version)).run_id).data.metrics


def log_version_artifact(client: MlflowClient, name: str, version: str, local_path: str, artifact_path: str) -> str:
    """Attach a file to the run of a model version and name it in a version tag (the file's stem,
    e.g. `reference_profile`), so the registry UI shows where it is; returns its artifact URI."""
    run_id = client.get_model_version(name, str(version)).run_id
    client.log_artifact(run_id, local_path, artifact_path)
    uri = f"runs:/{run_id}/{artifact_path}/{os.path.basename(local_path)}"
    client.set_model_version_tag(name, str(version), os.path.splitext(os.path.basename(local_path))[0], uri)
    return uri
