"""Ingestion assets, built per landed dataset: raw archive -> validated rows + quarantine."""

import json
from datetime import date, timedelta

import dagster as dg
from dagster_pandera import pandera_schema_to_dagster_type

from ml_assets.core.ingest import LandingFileError
from ml_assets.core.validation import ValidationResult, validate_files
from ml_assets.problems.spec import DatasetSpec
from ml_assets.resources.landing import LandingZoneResource
from ml_assets.schemas import quarantine_schema

GROUP = "ingestion"
# Files land overnight: each day's partition should be validated by 09:00 UTC. Evaluated by the
# daemon and shown as asset health in the UI (the 1.13 replacement for freshness checks).
FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 9 * * *", lower_bound_delta=timedelta(hours=24))

class ValidationConfig(dg.Config):
    max_quarantine_rate: float = 0.05
    """A batch with a larger share of rejected rows is blocked from flowing downstream."""

def _column_schema(dagster_type: dg.DagsterType) -> dict:
    """Show the pandera schema in the asset's Columns panel, not only on its output type."""
    return {"dagster/column_schema": dagster_type.metadata["schema"].schema}


def _preview(df, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if len(df) else "_no rows_")

def _check_results(spec: DatasetSpec, result: ValidationResult, max_rate: float) -> list[dg.AssetCheckResult]:
    key = dg.AssetKey(f"validated_{spec.name}")
    counted = result.rows_valid + result.rows_quarantined
    duplicates = sum(n for label, n in result.reason_counts.items() if label.endswith(":unique"))
    return [
        dg.AssetCheckResult(asset_key=key, check_name="row_accounting", passed=result.rows_in == counted,
                            metadata={"rows_in": result.rows_in, "rows_valid": result.rows_valid,
                                      "rows_quarantined": result.rows_quarantined}),
        dg.AssetCheckResult(asset_key=key, check_name="quarantine_rate",
                            passed=result.quarantine_rate <= max_rate,
                            metadata={"quarantine_rate": result.quarantine_rate, "max_rate": max_rate}),
        dg.AssetCheckResult(asset_key=key, check_name="duplicate_ids", passed=duplicates == 0,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"duplicate_rows_quarantined": duplicates}),
    ]

def build_ingestion_assets(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    raw_key, valid_key, quarantine_key = (f"raw_{spec.name}", f"validated_{spec.name}", f"quarantined_{spec.name}")

    @dg.asset(name=raw_key, partitions_def=partitions_def, group_name=GROUP, kinds={"file"},
              io_manager_key="json_io_manager",
              description=f"The day's {spec.name} landing file(s), archived unchanged (content-addressed).")
    def raw(context: dg.AssetExecutionContext, landing: LandingZoneResource) -> dg.Output[dict]:
        files = landing.files_for(spec.name, context.partition_key)
        if not files:
            raise dg.Failure(f"No {spec.name} file landed for {context.partition_key} in "
                             f"{landing.landing_path / spec.name}; expected {spec.name}_{context.partition_key}.csv")
        archived = [{**f.to_dict(), "archive_path": str(landing.archive(f, spec.name))} for f in files]
        return dg.Output({"partition": context.partition_key, "files": archived}, metadata={
            "files": [f.name for f in files], "bytes": sum(f.size for f in files),
            "sha256": dg.MetadataValue.json({f.name: f.sha256 for f in files}),
            "archive": dg.MetadataValue.path(archived[0]["archive_path"])})

    checks = [dg.AssetCheckSpec(name, asset=valid_key, blocking=blocking, description=text) for name, blocking, text in (
        ("row_accounting", True, "rows_in == rows_valid + rows_quarantined: no row disappears"),
        ("quarantine_rate", True, "a mostly-bad batch must not flow downstream"),
        ("duplicate_ids", False, "the landed batch repeated no key (repeats are quarantined)"))]

    valid_type = pandera_schema_to_dagster_type(spec.model)
    quarantine_type = pandera_schema_to_dagster_type(quarantine_schema(spec.model))

    @dg.multi_asset(
        name=f"validate_{spec.name}", partitions_def=partitions_def, group_name=GROUP, check_specs=checks,
        ins={"raw": dg.AssetIn(raw_key)},
        outs={valid_key: dg.AssetOut(dagster_type=valid_type, kinds={"pandas", "parquet"},
                                     description=spec.model.__doc__, freshness_policy=FRESHNESS,
                                     metadata=_column_schema(valid_type)),
              quarantine_key: dg.AssetOut(dagster_type=quarantine_type, kinds={"pandas", "parquet"},
                                          description=f"Rejected {spec.name} rows with reasons.",
                                          metadata=_column_schema(quarantine_type))})
    def validate(context: dg.AssetExecutionContext, config: ValidationConfig, raw: dict):
        """Split the day's rows into valid ones and quarantined ones with reasons."""
        paths = [f["archive_path"] for f in raw["files"]]
        try:
            result = validate_files(paths, spec.schema, {spec.date_column: date.fromisoformat(raw["partition"])})
        except LandingFileError as err:
            raise dg.Failure(description=str(err), allow_retries=False,
                             metadata={"file": err.file, "problem": err.problem, "fix": err.fix}) from None
        yield dg.Output(result.valid, output_name=valid_key, metadata={
            "dagster/row_count": result.rows_valid, "rows_in": result.rows_in,
            "rows_quarantined": result.rows_quarantined, "quarantine_rate": result.quarantine_rate,
            "extra_columns_ignored": result.extra_columns, "preview": _preview(result.valid)})
        yield dg.Output(result.quarantine, output_name=quarantine_key, metadata={
            "dagster/row_count": result.rows_quarantined,
            "reason_counts": dg.MetadataValue.json(result.reason_counts),
            "preview": _preview(result.quarantine)})
        yield from _check_results(spec, result, config.max_quarantine_rate)
        if result.rows_quarantined:
            context.log.warning(f"quarantined {result.rows_quarantined}/{result.rows_in} rows: "
                                f"{json.dumps(result.reason_counts)}")

    return [raw, validate]
