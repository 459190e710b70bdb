"""The service's side of an online experiment: follow the registry's experiment record and route.

The record (mlflow/experiments.py) is read on the same poll as the champion alias, so starting,
stopping or re-sharing an experiment needs no restart, in every worker and replica alike. While
one runs, its challenger is loaded next to the champion (completely, before a single assignment
makes it active, as the champion's hot swap does). Routing is the sticky hash of
(experiment id, entity id): every worker and replica sends an entity to the same arm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml_assets.core.experiments import CHALLENGER_ARM, CHAMPION_ARM, bucket
from ml_assets.mlflow import experiments
from ml_assets.mlflow.experiments import Experiment
from ml_assets.mlflow.registry import LoadedModel, client, load_version

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Active:
    record: Experiment
    challenger: LoadedModel | None  # None: it could not be loaded; its rows count as its failures

    @property
    def shadow(self) -> bool:
        return self.record.mode == "shadow"

    def routed(self, ids: np.ndarray) -> np.ndarray:
        """Which rows the challenger answers (none in shadow mode: it only scores)."""
        if self.shadow or not len(ids):
            return np.zeros(len(ids), dtype=bool)
        share, key = self.record.challenger_share, self.record.id
        return np.fromiter((bucket(i, key) < share for i in ids), dtype=bool, count=len(ids))

    def arms(self, routed: np.ndarray) -> np.ndarray:
        return np.where(routed, CHALLENGER_ARM, CHAMPION_ARM).astype(object)


class ExperimentWatcher:
    def __init__(self, name: str, tracking_uri: str | None, prepare: Callable[[LoadedModel], LoadedModel],
                 on_change: Callable[[Active | None], None] = lambda active: None):
        self.name, self.tracking_uri, self.prepare, self.on_change = name, tracking_uri, prepare, on_change
        self.client = client(tracking_uri)
        self.active: Active | None = None
        self.problem: str | None = None  # why the running experiment's challenger answers nobody (failed to load)
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Read the record once; start, stop or re-share routing when it changed. Whether it did."""
        with self._lock:
            try:
                record = experiments.current(self.client, self.name)
            except Exception as err:  # the registry is unreachable: keep routing as it was
                logger.warning("%s: the experiment record cannot be read: %s", self.name, err)
                return False
            if record is None or not record.running:
                return self._set(None)
            old = self.active
            if old is not None and old.record == record:
                return False
            same = old is not None and old.challenger is not None and old.challenger.version == record.challenger_version
            try:
                challenger = old.challenger if same else \
                    self.prepare(load_version(self.name, record.challenger_version, self.tracking_uri))
                self.problem = None
            except Exception as err:
                # The champion answers the challenger's rows, which count as the challenger's failures:
                # the error-rate guardrail then stops the experiment, as for a challenger failing later.
                challenger, self.problem = None, f"challenger v{record.challenger_version} could not be loaded"
                logger.warning("%s: experiment %s: %s: %s", self.name, record.id, self.problem, err)
            return self._set(Active(record, challenger))

    def _set(self, active: Active | None) -> bool:
        if active == self.active:
            return False
        self.active = active  # the atomic switch
        self.on_change(active)
        return True

    def describe(self) -> dict | None:
        active = self.active
        if active is None:
            return None
        r = active.record
        return {"running": True, "id": r.id, "mode": r.mode, "challenger_share": r.challenger_share,
                "challenger_version": r.challenger_version, "champion_version": r.champion_version,
                "problem": self.problem}
