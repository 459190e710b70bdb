"""Partition-aware storage for asset values: Parquet for tables, JSON for small records.

Both build on Dagster's UPathIOManager, so `base_path` may be a local folder or any
universal-pathlib URL (s3://, gs://, az://) without code changes. Data is never pickled.
"""

import json

import dagster as dg
import pandas as pd
from upath import UPath

from ml_assets import settings
from ml_assets.core.storage import refresh
from ml_assets.core.streaming import PartitionWindow


def write_parquet(frame: pd.DataFrame, path: UPath) -> None:
    """The one way tables are written (the benchmarks call it too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Dictionary pages pay off for repeated values, not for measurements: on floats the writer
    # hashes a page's worth of distinct values before falling back to plain encoding.
    repeated = [name for name, dtype in frame.dtypes.items() if not pd.api.types.is_float_dtype(dtype)]
    with path.open("wb") as fh:
        frame.to_parquet(fh, index=False, use_dictionary=[str(name) for name in repeated])


class _ParquetStore(dg.UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self.root = base_path

    def remove_partition(self, asset_key: dg.AssetKey, partition: str) -> bool:
        """Delete one stored partition (a blocked day must not be loaded by a later run).
        Returns whether there was one. Same layout as the writes: <base>/<key path>/<partition>.parquet."""
        path = self.root.joinpath(*asset_key.path, f"{partition}{self.extension}")
        if not path.exists():
            return False
        path.unlink()
        return True

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                            "the Parquet IO manager stores pandas DataFrames (use json_io_manager for records)")
        write_parquet(obj, path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as fh:
            return pd.read_parquet(fh)

    def load_partitions(self, context: dg.InputContext) -> dict[str, pd.DataFrame] | PartitionWindow:
        """A window of daily partitions: list the folder once, read what exists, log once.

        The base class probes (and logs) every requested partition; for an unpartitioned consumer of
        a daily asset that is every day since the start date, thousands of event-log writes a run.
        An input with `lazy_partitions` in its metadata gets the stored paths (a PartitionWindow, even
        for one partition) and reads them itself, a day at a time: a window can outgrow memory.
        """
        lazy = bool((context.definition_metadata or {}).get("lazy_partitions", False))
        if len(context.asset_partition_keys) == 1 and not lazy:  # one partition loads as the object itself
            return super().load_partitions(context)
        paths = self._get_paths_for_partitions(context)
        folder = next(iter(paths.values())).parent
        refresh(folder)  # a listing cached earlier in this process (a Celery worker lives long) hides new days
        present = {p.name for p in folder.iterdir()} if folder.exists() else set()
        missing = [key for key, path in paths.items() if path.name not in present]
        if missing and not (context.definition_metadata or {}).get("allow_missing_partitions", False):
            raise FileNotFoundError(f"{len(missing)} partition(s) of {context.asset_key.to_user_string()} are not "
                                    f"materialized (e.g. {missing[:3]}); materialize them or allow missing partitions")
        context.log.debug(f"loading {len(paths) - len(missing)} of {len(paths)} requested partitions from {folder}")
        if lazy:
            return PartitionWindow({key: path for key, path in paths.items() if path.name in present})
        return {key: self.load_from_path(context, path) for key, path in paths.items() if path.name in present}

class _JsonStore(dg.UPathIOManager):
    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))

    def load_from_path(self, context: dg.InputContext, path: UPath):
        return json.loads(path.read_text())

class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Tables as `<base_path>/<asset key>/<partition>.parquet`."""

    base_path: str | None = None

    def create_io_manager(self, context) -> _ParquetStore:
        return _ParquetStore(base_path=UPath(self.base_path or settings.warehouse_dir()))

class JsonIOManager(dg.ConfigurableIOManagerFactory):
    """Small records (file manifests, model references) as JSON beside the tables."""

    base_path: str | None = None

    def create_io_manager(self, context) -> _JsonStore:
        return _JsonStore(base_path=UPath(self.base_path or settings.warehouse_dir()))
