"""Jobs: named selections of assets that sensors, schedules and people launch."""

from __future__ import annotations

import dagster as dg

from ml_assets.problems.spec import DatasetSpec


def ingestion_job(spec: DatasetSpec):
    keys = [f"raw_{spec.name}", f"validated_{spec.name}", f"quarantined_{spec.name}"]
    return dg.define_asset_job(f"ingest_{spec.name}_job", selection=dg.AssetSelection.assets(*keys),
                               description=f"Archive, parse and validate one day of {spec.name}.")
