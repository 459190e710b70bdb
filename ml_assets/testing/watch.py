"""Watching a Dagster instance that a daemon drives: wait for a condition, read a sensor's tick
history, summarise the runs. The cluster demo and the daemon tests use them."""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED]


def wait_for(condition: Callable[[], object], what: str, deadline: float,
             diagnose: Callable[[], str] = lambda: "", poll_s: float = 1.0) -> object:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}\n{diagnose()}")
        time.sleep(poll_s)


def idle(instance: dg.DagsterInstance) -> bool:
    """No run queued, starting or running."""
    return not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=1)


def sensor_ticks(instance: dg.DagsterInstance, sensor_name: str) -> list:
    """The sensor's tick history as the daemon recorded it (newest first)."""
    states = [s for s in instance.all_instigator_state() if s.instigator_name == sensor_name]
    return [tick for state in states for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)]


def runs_summary(instance: dg.DagsterInstance, limit: int = 60) -> str:
    return "\n".join(f"{r.job_name} {r.status.value} {r.tags.get('dagster/partition', '')} "
                     f"{r.tags.get('dagster/sensor_name', '')}" for r in instance.get_runs(limit=limit))
