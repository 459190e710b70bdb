import dagster as dg
import pandas as pd
import pytest

from ml_assets.core.streaming import PartitionWindow
from ml_assets.io import JsonIOManager, ParquetIOManager

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key], "x": [1.5]})


@dg.asset(ins={"daily": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def window(daily: dict) -> pd.DataFrame:
    return pd.concat(daily.values(), ignore_index=True)


@dg.asset(io_manager_key="json_io_manager")
def record() -> dict:
    return {"model": "churn", "version": 3}


@dg.asset(ins={"record": dg.AssetIn()})
def reads_record(record: dict) -> pd.DataFrame:
    return pd.DataFrame([record])


def _resources(tmp_path):
    return {"io_manager": ParquetIOManager(base_path=str(tmp_path)),
            "json_io_manager": JsonIOManager(base_path=str(tmp_path))}


def test_partitions_are_files_and_a_window_loads_them_all(tmp_path):
    for day in DAYS.get_partition_keys():
        assert dg.materialize([daily], partition_key=day, resources=_resources(tmp_path)).success
    assert sorted(p.name for p in (tmp_path / "daily").iterdir()) == [
        "2026-01-01.parquet", "2026-01-02.parquet", "2026-01-03.parquet"]
    result = dg.materialize([daily, window], selection=[window], resources=_resources(tmp_path))
    assert sorted(result.output_for_node("window")["day"]) == ["2026-01-01", "2026-01-02", "2026-01-03"]


def test_records_are_json_not_pickles(tmp_path):
    result = dg.materialize([record, reads_record], resources=_resources(tmp_path))
    assert result.output_for_node("reads_record").to_dict("records") == [{"model": "churn", "version": 3}]
    assert (tmp_path / "record.json").read_text().strip().startswith("{")


def test_a_non_table_in_the_parquet_store_is_a_clear_error(tmp_path):
    @dg.asset
    def not_a_table() -> dict:
        return {"a": 1}

    with pytest.raises(TypeError, match="stores pandas DataFrames"):
        dg.materialize([not_a_table], resources=_resources(tmp_path))


@dg.asset(ins={"daily": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def strict_window(daily: dict) -> pd.DataFrame:
    return pd.concat(daily.values(), ignore_index=True)


@dg.asset(ins={"daily": dg.AssetIn(partition_mapping=dg.AllPartitionMapping(),
                                    metadata={"allow_missing_partitions": True})})
def lenient_window(daily: dict) -> pd.DataFrame:
    return pd.concat(daily.values(), ignore_index=True)


def test_missing_partitions_fail_unless_allowed_and_are_not_logged_one_by_one(tmp_path):
    dg.materialize([daily], partition_key="2026-01-02", resources=_resources(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"2 partition\(s\) of daily are not materialized"):
        dg.materialize([daily, strict_window], selection=[strict_window], resources=_resources(tmp_path))
    with dg.instance_for_test() as instance:
        result = dg.materialize([daily, lenient_window], selection=[lenient_window], instance=instance,
                                resources=_resources(tmp_path))
        assert result.output_for_node("lenient_window")["day"].tolist() == ["2026-01-02"]
        messages = [e.user_message for e in instance.all_logs(result.run_id) if "partition" in e.user_message]
        assert sum("Couldn't load partition" in m for m in messages) == 0
        assert any("loading 1 of 3 requested partitions" in m for m in messages)


@dg.asset(key=["problem", "daily"], partitions_def=DAYS)
def nested_daily(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key]})


def test_a_removed_partition_is_gone_and_drops_out_of_a_lenient_window(tmp_path):
    """What a blocked ingestion day does to its stored partitions (and those of assets fed by it)."""
    for day in ("2026-01-01", "2026-01-02"):
        dg.materialize([daily, nested_daily], partition_key=day, resources=_resources(tmp_path))
    store = ParquetIOManager(base_path=str(tmp_path)).create_io_manager(None)
    assert store.remove_partition(dg.AssetKey("daily"), "2026-01-02") is True
    assert store.remove_partition(dg.AssetKey(["problem", "daily"]), "2026-01-02") is True
    assert store.remove_partition(dg.AssetKey("daily"), "2026-01-02") is False  # nothing left to remove
    assert sorted(p.name for p in (tmp_path / "problem" / "daily").iterdir()) == ["2026-01-01.parquet"]
    result = dg.materialize([daily, lenient_window], selection=[lenient_window], resources=_resources(tmp_path))
    assert result.output_for_node("lenient_window")["day"].tolist() == ["2026-01-01"]



ONE_DAY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-02")


@dg.asset(partitions_def=ONE_DAY)
def only_day(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"day": [context.partition_key]})


def _lazy(upstream: str):
    @dg.asset(name=f"lazy_{upstream}", ins={"window": dg.AssetIn(upstream, partition_mapping=dg.AllPartitionMapping(),
                                           metadata={"allow_missing_partitions": True, "lazy_partitions": True})})
    def lazy(window: PartitionWindow) -> pd.DataFrame:
        return pd.DataFrame({"key": list(window.paths), "day": [window.read(k)["day"].iloc[0] for k in window.paths]})

    return lazy


def test_a_lazy_input_gets_the_stored_paths_not_the_tables(tmp_path):
    """A window of one partition arrives as paths too: a streaming consumer never gets a DataFrame."""
    lazy_daily, lazy_only = _lazy("daily"), _lazy("only_day")
    dg.materialize([only_day], partition_key="2026-01-01", resources=_resources(tmp_path))
    result = dg.materialize([only_day, lazy_only], selection=[lazy_only], resources=_resources(tmp_path))
    assert result.output_for_node("lazy_only_day").to_dict("records") == [{"key": "2026-01-01", "day": "2026-01-01"}]
    for day in ("2026-01-02", "2026-01-03"):
        dg.materialize([daily], partition_key=day, resources=_resources(tmp_path))
    result = dg.materialize([daily, lazy_daily], selection=[lazy_daily], resources=_resources(tmp_path))
    assert result.output_for_node("lazy_daily")["key"].tolist() == ["2026-01-02", "2026-01-03"]
