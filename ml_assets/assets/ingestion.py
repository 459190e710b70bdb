"""Ingestion assets, built per landed dataset: raw archive -> validated rows + quarantine.

Blocked means blocked: the validate step decides its blocking checks before any row is handed
on. A failing batch stores its quarantine (rejected rows stay visible), not its valid rows; the
day's earlier validated partition and the features built from it are removed, and the step fails
saying why and how to act.
"""

import json
from datetime import date, timedelta

import dagster as dg

from ml_assets.assets.types import dagster_type, keys_enforced
from ml_assets.core.accounting import BLOCKING, assess, block_message, failed_blocking
from ml_assets.core.day_files import validate_files
from ml_assets.core.ingest import LandingFileError
from ml_assets.core.validation import ValidationResult
from ml_assets.ops.location import find_definitions_module
from ml_assets.problem import DatasetSpec
from ml_assets.schemas import quarantine_schema
from ml_assets.sources.base import SourceError, pull_day
from ml_assets.sources.landing import LandingZoneResource

GROUP = "ingestion"
# Files land overnight: each day's partition should be validated by 09:00 UTC. Evaluated by the
# daemon and shown as asset health in the UI (the 1.13 replacement for freshness checks).
FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 9 * * *", lower_bound_delta=timedelta(hours=24))


class ValidationConfig(dg.Config):
    max_quarantine_rate: float = 0.05
    """A batch with a larger share of rejected rows is blocked from flowing downstream."""


def inventory_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(f"{dataset}_landing_inventory")


def _column_schema(typed: dg.DagsterType) -> dict:
    """Show the pandera schema in the asset's Columns panel, not only on its output type."""
    return {"dagster/column_schema": typed.metadata["schema"].schema}


def _preview(df, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if len(df) else "_no rows_")


def _file_error(err: LandingFileError, files: list[dict]) -> dg.Failure:
    """Name the landing file the user dropped, and its archive copy (the file actually read)."""
    where = next((f for f in files if f["name"] == err.file), files[0])
    return dg.Failure(description=f"{where['path']}: {err.problem}. Fix: {err.fix}. "
                                  f"(archive copy: {where['archive_path']})", allow_retries=False,
                      metadata={"landing_file": where["path"], "archive_copy": where["archive_path"],
                                "problem": err.problem, "fix": err.fix})


def _valid_metadata(result: ValidationResult) -> dict:
    return {"dagster/row_count": result.rows_valid, "records_in": result.records, "rows_in": result.rows_in,
            "rows_quarantined": result.rows_quarantined, "rows_rejected_by_parser": result.rows_rejected_by_parser,
            "blank_lines": result.blank_lines, "quarantine_rate": result.quarantine_rate,
            "utc_converted": dg.MetadataValue.json(result.utc_converted),
            "redelivered_files": dg.MetadataValue.json(result.redelivered),
            "extra_columns_ignored": result.extra_columns, "preview": _preview(result.valid)}


def build_ingestion_assets(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition,
                           feeds: tuple[dg.AssetKey, ...] = ()) -> list:
    """feeds: daily assets built from this dataset's rows (e.g. features); removed with a blocked day."""
    raw_key, valid_key, quarantine_key = (f"raw_{spec.name}", f"validated_{spec.name}", f"quarantined_{spec.name}")
    rerun = [raw_key, valid_key, quarantine_key, *(key.to_user_string() for key in feeds)]

    if spec.source is not None:
        raw = _pulled_raw(spec, raw_key, partitions_def)
    else:
        raw = _landed_raw(spec, raw_key, partitions_def)

    checks = [dg.AssetCheckSpec(name, asset=valid_key, blocking=name in BLOCKING, description=text) for name, text in (
        ("row_accounting", ("records_in (counted on the raw file) == rows_valid + rows_quarantined + "
                           "rows_rejected_by_parser: no record disappears")),
        ("quarantine_rate", "a mostly-bad batch must not flow downstream"),
        ("duplicate_ids", "the landed batch repeated no key (repeats are quarantined)"))]
    validate = _validate_asset(spec, partitions_def, raw_key, valid_key, quarantine_key, checks, feeds, rerun)
    if spec.source is not None:
        return [raw, validate]
    inventory = dg.AssetSpec(inventory_key(spec.name), group_name=GROUP, kinds={"file"},
                             description=f"Every file under the {spec.name} landing folder and what happened to it "
                                         "(requested, waiting until complete, or ignored with the reason); "
                                         f"recorded by {spec.name}_landing_sensor whenever it changes.")
    return [raw, validate, inventory]


def _pulled_raw(spec: DatasetSpec, raw_key: str, partitions_def) -> dg.AssetsDefinition:
    @dg.asset(name=raw_key, partitions_def=partitions_def, group_name=GROUP, kinds={"file"},
              io_manager_key="json_io_manager",
              description=f"The day's {spec.name} rows pulled from {spec.source.describe()}, archived unchanged "
                          "as one content-addressed file (re-pulling identical content changes nothing).")
    def raw(context: dg.AssetExecutionContext, landing: LandingZoneResource) -> dg.Output[dict]:
        try:
            pulled = pull_day(spec.source, landing.archive_path, spec.name, context.partition_key)
        except SourceError as err:
            raise dg.Failure(description=str(err), metadata={"source": err.source, "problem": err.problem,
                                                             "fix": err.fix}) from None
        return dg.Output({"partition": context.partition_key, "files": [pulled]}, metadata={
            "source": spec.source.describe(), "bytes": pulled["size"], "sha256": pulled["sha256"],
            "archive": dg.MetadataValue.path(pulled["archive_path"])})

    return raw


def _landed_raw(spec: DatasetSpec, raw_key: str, partitions_def) -> dg.AssetsDefinition:
    @dg.asset(name=raw_key, partitions_def=partitions_def, group_name=GROUP, kinds={"file"},
              io_manager_key="json_io_manager",
              description=f"The day's {spec.name} landing file(s), archived unchanged (content-addressed).")
    def raw(context: dg.AssetExecutionContext, landing: LandingZoneResource) -> dg.Output[dict]:
        files = landing.files_for(spec.name, context.partition_key)
        if not files:
            raise dg.Failure(f"No {spec.name} file landed for {context.partition_key} in "
                             f"{landing.landing_path / spec.name}; expected {spec.name}_{context.partition_key}.csv "
                             "(or .csv.gz, .parquet)")
        archived = [{**f.to_dict(), "archive_path": str(landing.archive(f, spec.name))} for f in files]
        return dg.Output({"partition": context.partition_key, "files": archived}, metadata={
            "files": [f.name for f in files], "bytes": sum(f.size for f in files),
            "sha256": dg.MetadataValue.json({f.name: f.sha256 for f in files}),
            "archive": dg.MetadataValue.path(archived[0]["archive_path"])})

    return raw


def _validate_asset(spec: DatasetSpec, partitions_def, raw_key: str, valid_key: str, quarantine_key: str,
                    checks: list, feeds: tuple, rerun: list[str]) -> dg.AssetsDefinition:
    valid_type = dagster_type(spec.model)
    quarantine_type = dagster_type(quarantine_schema(spec.model))

    @dg.multi_asset(
        name=f"validate_{spec.name}", partitions_def=partitions_def, group_name=GROUP, check_specs=checks,
        ins={"raw": dg.AssetIn(raw_key)}, required_resource_keys={"io_manager"},
        outs={valid_key: dg.AssetOut(dagster_type=valid_type, kinds={"pandas", "parquet"},
                                     description=spec.model.__doc__, freshness_policy=FRESHNESS,
                                     metadata=_column_schema(valid_type)),
              quarantine_key: dg.AssetOut(dagster_type=quarantine_type, kinds={"pandas", "parquet"},
                                          description=f"Rejected {spec.name} rows with reasons.",
                                          metadata=_column_schema(quarantine_type))})
    def validate(context: dg.AssetExecutionContext, config: ValidationConfig, raw: dict):
        """Split the day's rows into valid and quarantined ones; a batch failing a blocking check is
        stored only as quarantine, and the day's validated rows and features are removed."""
        files, day = raw["files"], raw["partition"]
        try:
            result = validate_files([f["archive_path"] for f in files], spec.schema,
                                    {spec.date_column: date.fromisoformat(day)}, names=[f["name"] for f in files])
        except LandingFileError as err:
            raise _file_error(err, files) from None
        outcomes = assess(result, config.max_quarantine_rate)
        blocked = failed_blocking(outcomes)
        yield dg.Output(result.quarantine, output_name=quarantine_key, metadata={
            "dagster/row_count": result.rows_quarantined, "blocked": bool(blocked),
            "reason_counts": dg.MetadataValue.json(result.reason_counts), "preview": _preview(result.quarantine)})
        if not blocked:
            yield dg.Output(keys_enforced(result.valid), output_name=valid_key, metadata=_valid_metadata(result))
        for o in outcomes:
            yield dg.AssetCheckResult(asset_key=dg.AssetKey(valid_key), check_name=o.name, passed=o.passed,
                                      description=o.description or None, metadata=o.metadata,
                                      severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN)
        if result.rows_quarantined:
            context.log.warning(f"quarantined {result.rows_quarantined}/{result.records} records: "
                                f"{json.dumps(result.reason_counts)}")
        if blocked:
            store = context.resources.io_manager
            removed = [f"{key.to_user_string()} {day}" for key in (dg.AssetKey(valid_key), *feeds)
                       if store.remove_partition(key, day)]
            message = block_message(spec.name, day, result, blocked, files, rerun, removed, find_definitions_module())
            raise dg.Failure(description=message, allow_retries=False, metadata={
                "blocked": True, "partition": day, "failed_checks": [o.name for o in blocked],
                "removed_partitions": removed, **{f"{o.name}": dg.MetadataValue.json(o.metadata) for o in blocked}})

    return validate
