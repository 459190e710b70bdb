"""An online experiment's state lives in the registry, next to the aliases it is about.

The record is one JSON tag on the registered model (`ml_assets.experiment`), written in a single
registry write like every alias move: a process killed mid-way leaves either the old record or
the new one. The service reads it on the same poll that reads the aliases, so starting, stopping
or re-sharing an experiment needs no restart. Its id is part of the sticky hash: every experiment
draws its own arms.

Lifecycle: `start` (the challenger alias is set and traffic is split), then exactly one ending:
`stop` (traffic back to the champion; the challenger is not promoted) or `conclude` with a
promotion, which moves `champion` through the same `promote` as a gated direct promotion.
Ending twice is a no-op, so a sensor that retries can never promote twice. No Dagster here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml_assets.mlflow.registry import CHALLENGER, CHAMPION, AliasMove, alias_version, promote

TAG = "ml_assets.experiment"
RUNNING, STOPPED, PROMOTED = "running", "stopped", "promoted"


@dataclass(frozen=True)
class Experiment:
    id: str
    mode: str  # shadow | canary | ab
    challenger_share: float  # of entities answered by the challenger (shadow: 0, it only scores)
    champion_version: str
    challenger_version: str
    started_utc: str
    status: str = RUNNING
    ended_utc: str | None = None
    reason: str = ""

    @property
    def running(self) -> bool:
        return self.status == RUNNING


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write(client: MlflowClient, name: str, experiment: Experiment) -> Experiment:
    client.set_registered_model_tag(name, TAG, json.dumps(asdict(experiment)))
    return experiment


def current(client: MlflowClient, name: str) -> Experiment | None:
    """The model's latest experiment (running or ended), None when it never had one (or the model
    is not registered yet)."""
    try:
        text = client.get_registered_model(name).tags.get(TAG)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return Experiment(**json.loads(text)) if text else None


def start(client: MlflowClient, name: str, challenger_version: str, mode: str, challenger_share: float) -> Experiment:
    """Make `challenger_version` the challenger and split traffic. Refused while another runs."""
    running = current(client, name)
    if running is not None and running.running:
        raise RuntimeError(f"{name}: experiment {running.id} (v{running.challenger_version} vs "
                           f"v{running.champion_version}) is still running; stop it first")
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise LookupError(f"{name}: no champion to compare the challenger with; promote a first model directly")
    if champion == str(challenger_version):
        raise ValueError(f"{name}: v{challenger_version} is already the champion")
    client.set_registered_model_alias(name, CHALLENGER, str(challenger_version))
    experiment = Experiment(id=f"{name}-v{challenger_version}-{uuid.uuid4().hex[:8]}", mode=mode,
                            challenger_share=0.0 if mode == "shadow" else float(challenger_share),
                            champion_version=champion, challenger_version=str(challenger_version), started_utc=_now())
    return _write(client, name, experiment)


def _end(client: MlflowClient, name: str, experiment_id: str, status: str, reason: str) -> Experiment | None:
    """The record ended with `status`, or None when that experiment is not the running one."""
    experiment = current(client, name)
    if experiment is None or experiment.id != experiment_id or not experiment.running:
        return None
    ended = Experiment(**{**asdict(experiment), "status": status, "ended_utc": _now(), "reason": reason})
    return _write(client, name, ended)


def stop(client: MlflowClient, name: str, experiment_id: str, reason: str) -> Experiment | None:
    """All traffic back to the champion; the challenger keeps its alias but is not promoted."""
    return _end(client, name, experiment_id, STOPPED, reason)


def conclude_with_promotion(client: MlflowClient, name: str, experiment_id: str, reason: str) -> AliasMove | None:
    """Promote the experiment's challenger, once. None when the experiment is not running (already
    ended, or another one runs): the caller's retry after a crash does nothing twice.

    The champion moves first, the record second: killed in between, the next call finds the
    challenger already champion (`promote` is idempotent) and only ends the record."""
    experiment = current(client, name)
    if experiment is None or experiment.id != experiment_id or not experiment.running:
        return None
    move = promote(client, name, experiment.challenger_version)
    _end(client, name, experiment_id, PROMOTED, reason)
    return move
