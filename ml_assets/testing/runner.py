"""Evaluate a sensor (or the automation conditions) on a real instance and execute what it
requests, as the daemon would.

Used by the demo and the in-process replay tests; in production the Dagster daemon does this (and
ml_assets_tests/e2e runs the real one). Runs carry the same `dagster/run_key` and
`dagster/sensor_name` tags the daemon sets, and a request is skipped as the daemon skips it: when
any run of that sensor already has its run key, whatever that run's status (a failed run is not
retried by re-requesting it; re-execute it instead). So a run key executed here is never executed
again by the daemon, and vice versa.
"""

from collections import defaultdict
from datetime import datetime

import dagster as dg

# The tags the sensor daemon puts on the runs it launches: public conventions (shown in the UI and
# documented with RunRequest), spelled out here once rather than imported from dagster's internals.
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"


def already_requested(instance: dg.DagsterInstance, sensor_name: str, run_key: str) -> bool:
    """True when any run of `sensor_name` carries `run_key`, in any status: the daemon skips such a
    request (it only launches a run of its own it created and had not yet started)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key, SENSOR_NAME_TAG: sensor_name}),
                             limit=1)
    return bool(runs)


def console(level: str | None) -> dict:
    """Run config that sets the console log level of a run (None: Dagster's default, DEBUG)."""
    return {"loggers": {"console": {"config": {"log_level": level}}}} if level else {}


def tick_sensor(defs: dg.Definitions, sensor_name: str, instance: dg.DagsterInstance,
                cursor: str | None = None, log_level: str | None = None, ticks: int = 1,
                ) -> tuple[list[dg.ExecuteInProcessResult], str | None, list[str]]:
    """`ticks` sensor ticks in a row, each from the cursor the last one left (a landing sensor needs
    two to see a file unchanged): returns (results of the runs executed, new cursor, skip messages)."""
    results, skipped = [], []
    for _ in range(ticks):
        done, cursor, said = _tick_once(defs, sensor_name, instance, cursor, log_level)
        results += done
        skipped = said
    return results, cursor, skipped


def _tick_once(defs: dg.Definitions, sensor_name: str, instance: dg.DagsterInstance, cursor: str | None,
               log_level: str | None) -> tuple[list[dg.ExecuteInProcessResult], str | None, list[str]]:
    sensor = defs.resolve_sensor_def(sensor_name)
    needed = {key: defs.resources[key] for key in sensor.required_resource_keys}  # not the run-scoped ones
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      sensor_name=sensor_name, resources=needed)
    data = sensor.evaluate_tick(context)
    for event in data.asset_events or []:  # what the daemon records for a sensor's asset events
        instance.report_runless_asset_event(event)
    results = []
    for request in data.run_requests or []:
        if request.run_key and already_requested(instance, sensor_name, request.run_key):
            continue
        job = defs.resolve_job_def(request.job_name or sensor.job_name)
        tags = {**request.tags, SENSOR_NAME_TAG: sensor_name, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})}
        results.append(job.execute_in_process(instance=instance, partition_key=request.partition_key,
                                              run_config={**request.run_config, **console(log_level)}, tags=tags,
                                              raise_on_error=False))
    return results, data.cursor, [data.skip_message] if data.skip_message else []


def tick_automation(defs: dg.Definitions, instance: dg.DagsterInstance, evaluation_time: datetime | None = None,
                    cursor=None, log_level: str | None = None) -> tuple[list[dg.ExecuteInProcessResult], object]:
    """One tick of the automation-condition sensor: evaluate every asset's condition at
    `evaluation_time` (a simulated "now" during replays), then run what was requested, one run
    per partition. Returns (results, cursor for the next tick)."""
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=evaluation_time,
                                                   cursor=cursor)
    by_partition: dict[str | None, list[dg.AssetKey]] = defaultdict(list)
    for spec in defs.resolve_all_asset_specs():
        if spec.automation_condition is not None:
            for partition in evaluation.get_requested_partitions(spec.key):
                by_partition[partition].append(spec.key)
    job = defs.resolve_implicit_global_asset_job_def()
    results = [job.execute_in_process(instance=instance, partition_key=partition, asset_selection=keys,
                                      tags={"dagster/from_automation_condition": "true"}, raise_on_error=False,
                                      run_config=console(log_level))
               for partition, keys in sorted(by_partition.items(), key=lambda item: item[0] or "")]
    return results, evaluation.cursor
