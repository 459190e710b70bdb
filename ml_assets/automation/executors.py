"""Which executor runs the training job: configuration, not code.

`ML_ASSETS_EXECUTOR`, read when the Definitions are built (like the sensor intervals):

- unset or `in_process` (the default): every step in the run's own process. On one machine this is
  the fastest: a worker process per step would re-import the whole stack (seconds each) to run
  steps that are mostly sequential.
- `celery`: dagster-celery's executor. Each step, and so each candidate family of
  `<problem>/candidate_model`, is a task on the broker `ML_ASSETS_CELERY_BROKER`, run by whichever
  worker (`make celery-workers`, on any machine) takes it.

Why an environment variable and not run config: Dagster fixes a job's executor in its definition,
and an executor that chose in-process or Celery from run config would have to build Dagster's
internal executor classes. The code location, the daemon and the workers load the same module
with the same environment, so one setting switches the deployment without touching code. Code
that builds Definitions itself can pass `training_executor=` to `build_definitions` instead.

The broker URL is handed to the executor as an environment reference, resolved when a run starts,
so a password in it never lands in a job snapshot or a run's config.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_VARIABLE = "ML_ASSETS_EXECUTOR"
BROKER_VARIABLE = "ML_ASSETS_CELERY_BROKER"
CHOICES = ("in_process", "celery")


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor on the broker named by ML_ASSETS_CELERY_BROKER (results come back
    over the same broker: Celery's `rpc://` backend, nothing else to run)."""
    try:
        from dagster_celery import celery_executor as executor
    except ImportError as err:
        raise ValueError(f"{EXECUTOR_VARIABLE}=celery needs dagster-celery: install ml_assets[celery] "
                        "(or unset the variable to run in process)") from err
    if not os.environ.get(BROKER_VARIABLE):
        raise ValueError(f"{EXECUTOR_VARIABLE}=celery but {BROKER_VARIABLE} is not set: give the broker URL the "
                        "workers listen on, e.g. pyamqp://guest:guest@127.0.0.1:5672//")
    return executor.configured({"broker": {"env": BROKER_VARIABLE}}, name="celery")


def training_executor(choice: str | None = None) -> dg.ExecutorDefinition:
    """The executor of the training jobs: `choice`, else ML_ASSETS_EXECUTOR, else in process."""
    choice = (choice or os.environ.get(EXECUTOR_VARIABLE) or "in_process").strip().lower().replace("-", "_")
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "celery":
        return celery_executor()
    raise ValueError(f"{EXECUTOR_VARIABLE}={choice!r} is not an executor here: use one of {', '.join(CHOICES)}")
