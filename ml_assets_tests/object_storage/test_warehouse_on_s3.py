"""The warehouse on S3 read by a long-lived process (a Celery worker, the daemon's code server):
a window of daily partitions must list the bucket afresh each time, or days written since by
other processes stay invisible (found on the `make cluster` topology: a drift retrain on a worker
that had trained before saw the window of the first training)."""

import io

import dagster as dg
import pandas as pd
import s3fs

from ml_assets.io.io_managers import ParquetIOManager

DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")


@dg.asset(partitions_def=DAILY, io_manager_key="warehouse")
def day(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key]})


@dg.asset(ins={"day": dg.AssetIn(metadata={"lazy_partitions": True, "allow_missing_partitions": True})},
          io_manager_key="mem")
def window(day) -> list[str]:
    return sorted(day.paths)


def test_a_window_read_again_in_the_same_process_sees_days_written_by_another(s3):
    base = s3.folder()
    resources = {"warehouse": ParquetIOManager(base_path=base), "mem": dg.InMemoryIOManager()}
    for key in ("2026-01-01", "2026-01-02"):
        assert dg.materialize([day], partition_key=key, resources=resources).success

    def read_window() -> list[str]:
        result = dg.materialize([day, window], selection=[window], resources=resources)
        return result.output_for_node("window")

    assert read_window() == ["2026-01-01", "2026-01-02"]  # lists (and s3fs caches) the folder
    buffer = io.BytesIO()
    pd.DataFrame({"day": ["2026-01-03"]}).to_parquet(buffer)
    other = s3fs.S3FileSystem(skip_instance_cache=True)  # another process's client
    other.pipe(f"{base}/day/2026-01-03.parquet".removeprefix("s3://"), buffer.getvalue())
    assert read_window() == ["2026-01-01", "2026-01-02", "2026-01-03"]
