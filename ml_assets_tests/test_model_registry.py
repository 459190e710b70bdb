"""Promotion and rollback as alias moves in a real MLflow registry."""

from datetime import datetime

import numpy as np
import pytest
from ml_examples.churn.problem import CHURN

from ml_assets.mlflow.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    alias_version,
    client,
    load_version,
    promote,
    rollback,
)
from ml_assets_tests.core.churn_data import churn_frames
from ml_assets_tests.registered import fit_churn, register

NAME = "churn_model"


@pytest.fixture
def fitted(fresh_mlflow) -> dict:
    """version -> its pipeline: three models that score differently, so a load can tell them apart."""
    return {register(pipeline): pipeline for pipeline in (fit_churn(c=c) for c in (1.0, 0.01, 0.0001))}


@pytest.fixture
def versions(fitted) -> list[str]:
    return list(fitted)


def _scores(pipeline):
    rows = churn_frames(days=1, rows=50)[0][CHURN.feature_columns]  # known rows, the same on every call
    return pipeline.predict_proba(rows)[:, 1]


def test_promotion_keeps_the_old_champion_as_previous(versions):
    c = client()
    assert alias_version(c, NAME, CHAMPION) is None  # no champion yet is not an error
    first = promote(c, NAME, versions[0])
    assert (first.champion, first.previous) == (versions[0], None)
    second = promote(c, NAME, versions[1])
    assert (second.champion, second.previous) == (versions[1], versions[0])
    assert alias_version(c, NAME, CHAMPION) == versions[1] and alias_version(c, NAME, PREVIOUS) == versions[0]
    assert promote(c, NAME, versions[1]).champion == versions[1]  # promoting the champion again is a no-op
    assert alias_version(c, NAME, PREVIOUS) == versions[0]
    tags = c.get_model_version(NAME, versions[1]).tags  # an epoch for ordering, a date people can read
    stamp = datetime.fromisoformat(tags["promoted_at_utc"])
    assert stamp.tzinfo is not None and abs(stamp.timestamp() - float(tags["promoted_at"])) < 1


def test_promotion_clears_the_challenger_alias_it_consumes(versions):
    c = client()
    c.set_registered_model_alias(NAME, CHALLENGER, versions[2])
    promote(c, NAME, versions[2])
    assert alias_version(c, NAME, CHALLENGER) is None


def test_rollback_walks_back_through_promotions_and_records_why(fitted, versions):
    c = client()
    for version in versions:
        promote(c, NAME, version)
    move = rollback(c, NAME, reason="bad calibration in prod")
    assert (move.champion, move.previous) == (versions[1], versions[2])
    assert alias_version(c, NAME, PREVIOUS) == versions[0]  # a second rollback is possible
    tags = c.get_model_version(NAME, versions[2]).tags
    assert tags["rollback_reason"] == "bad calibration in prod" and "rolled_back_at" in tags
    assert rollback(c, NAME).champion == versions[0]
    with pytest.raises(LookupError, match="no previous champion"):
        rollback(c, NAME)
    assert alias_version(c, NAME, CHAMPION) == versions[0]
    served = _scores(load_version(NAME, alias_version(c, NAME, CHAMPION)).pipeline)  # what is served now
    assert served == pytest.approx(_scores(fitted[versions[0]]), rel=1e-12)
    assert not np.allclose(served, _scores(fitted[versions[2]]), atol=1e-3)  # not the rolled-back model


def test_dying_between_the_two_alias_writes_leaves_the_old_champion(versions, monkeypatch):
    c = client()
    promote(c, NAME, versions[0])
    write = c.set_registered_model_alias

    def die_on_champion(name, alias, version):
        if alias == CHAMPION:
            raise SystemExit("process killed")  # the moment between `previous` and `champion`
        return write(name, alias, version)

    monkeypatch.setattr(c, "set_registered_model_alias", die_on_champion)
    with pytest.raises(SystemExit):
        promote(c, NAME, versions[1])
    assert alias_version(c, NAME, CHAMPION) == versions[0]  # unchanged, and `previous` harmlessly equal
    monkeypatch.undo()
    move = promote(client(), NAME, versions[1])  # the rerun completes the promotion
    assert (move.champion, move.previous) == (versions[1], versions[0])


def test_a_version_loads_from_the_given_stores_not_mlflows_global_registry(fitted, versions, fresh_mlflow, tmp_path,
                                                                          monkeypatch):
    """MLflow resolves a `models:/` URI against its *global* registry whatever registry it is given:
    batch scoring then failed "Registered Model with name=churn_model not found" and wrote a stray
    ./mlflow.db unless MLFLOW_TRACKING_URI was exported."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'decoy.db'}")  # MLflow's global default
    loaded = load_version(NAME, versions[1], tracking_uri=fresh_mlflow, registry_uri=fresh_mlflow)
    assert loaded.version == versions[1] and loaded.example is not None
    expected = fitted[versions[1]].predict_proba(loaded.example)  # the very pipeline registered as that version
    np.testing.assert_allclose(loaded.pipeline.predict_proba(loaded.example), expected, rtol=1e-12)
    assert not list((tmp_path / "cwd").iterdir()) and not (tmp_path / "decoy.db").exists()
