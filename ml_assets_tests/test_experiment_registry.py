"""An experiment's lifecycle in a real MLflow registry: one record, one ending, one promotion."""

import pytest

from ml_assets.mlflow import experiments
from ml_assets.mlflow.registry import CHALLENGER, CHAMPION, PREVIOUS, alias_version, client, promote
from ml_assets_tests.registered import fit_churn, register

NAME = "churn_model"


@pytest.fixture
def versions(fresh_mlflow) -> list[str]:
    found = [register(fit_churn(c=c)) for c in (1.0, 0.01)]
    promote(client(), NAME, found[0])
    return found


def test_start_sets_the_challenger_and_a_running_record(versions):
    c = client()
    experiment = experiments.start(c, NAME, versions[1], "ab", 0.5)
    assert alias_version(c, NAME, CHALLENGER) == versions[1]
    assert experiments.current(c, NAME) == experiment
    assert (experiment.champion_version, experiment.challenger_version, experiment.running) == (versions[0], versions[1], True)
    with pytest.raises(RuntimeError, match="is still running; stop it first"):
        experiments.start(c, NAME, versions[1], "ab", 0.5)
    assert experiments.current(c, NAME) == experiment


def test_shadow_answers_nobody_with_the_challenger(versions):
    assert experiments.start(client(), NAME, versions[1], "shadow", 0.5).challenger_share == 0.0


def test_start_refuses_without_a_champion_or_with_the_champion(fresh_mlflow):
    c = client()
    assert experiments.current(c, NAME) is None  # not even registered yet: no experiment, not an error
    first = register(fit_churn(c=1.0))
    with pytest.raises(LookupError, match="no champion to compare"):
        experiments.start(c, NAME, first, "ab", 0.5)
    promote(c, NAME, first)
    with pytest.raises(ValueError, match="already the champion"):
        experiments.start(c, NAME, first, "ab", 0.5)


def test_a_promotion_happens_once_however_often_it_is_asked(versions):
    c = client()
    experiment = experiments.start(c, NAME, versions[1], "canary", 0.1)
    move = experiments.conclude_with_promotion(c, NAME, experiment.id, "challenger loss lower")
    assert (move.champion, move.previous) == (versions[1], versions[0])
    assert experiments.conclude_with_promotion(c, NAME, experiment.id, "again") is None  # a retried sensor tick
    assert experiments.stop(c, NAME, experiment.id, "late stop") is None  # ended experiments stay ended
    ended = experiments.current(c, NAME)
    assert (ended.status, ended.reason) == (experiments.PROMOTED, "challenger loss lower") and ended.ended_utc
    assert alias_version(c, NAME, CHAMPION) == versions[1] and alias_version(c, NAME, PREVIOUS) == versions[0]


def test_killed_between_the_promotion_and_the_record_the_retry_only_ends_it(versions):
    c = client()
    experiment = experiments.start(c, NAME, versions[1], "ab", 0.5)
    promote(c, NAME, versions[1])  # what conclude_with_promotion did before a kill -9
    move = experiments.conclude_with_promotion(c, NAME, experiment.id, "decided")
    assert move.champion == versions[1] and experiments.current(c, NAME).status == experiments.PROMOTED
    assert alias_version(c, NAME, PREVIOUS) == versions[0]  # not moved a second time


def test_stop_keeps_the_champion(versions):
    c = client()
    experiment = experiments.start(c, NAME, versions[1], "ab", 0.5)
    stopped = experiments.stop(c, NAME, experiment.id, "guardrail: challenger error rate 12 %")
    assert stopped.status == experiments.STOPPED and not stopped.running
    assert alias_version(c, NAME, CHAMPION) == versions[0]
    assert experiments.conclude_with_promotion(c, NAME, experiment.id, "late decision") is None
    assert alias_version(c, NAME, CHAMPION) == versions[0]
    assert experiments.start(c, NAME, versions[1], "ab", 0.5).id != experiment.id  # a new draw of arms
