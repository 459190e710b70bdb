"""One side of the drift benchmark, run in its own interpreter (and venv) so that peak memory is
the process's own: `python side.py ml_assets|evidently DATA_DIR`, prints one JSON line.

Memory is peak RSS (ru_maxrss) minus the RSS once both frames are loaded: what the computation
adds on top of the data it is given."""

import json
import resource
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from data import CATEGORICAL, NUMERIC


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def run_ml_assets(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """One shot on the two raw frames (what Evidently does), then the daily check alone: a
    comparison with a profile built beforehand (at training time, in production)."""
    from ml_assets.core.drift import (  # imported before the baseline (main)
        compare,
        detect,
    )
    from ml_assets.core.profile import build_profile

    started = time.perf_counter()
    report = detect(reference, current, NUMERIC, CATEGORICAL)
    done = time.perf_counter()
    profile = build_profile(reference, NUMERIC, CATEGORICAL)
    compared = time.perf_counter()
    daily = compare(profile, current)
    compare_seconds = time.perf_counter() - compared
    assert daily.to_frame().equals(report.to_frame())
    return {"seconds": done - started, "compare_seconds": compare_seconds,
            "columns": {c.column: {"test": c.test, "score": c.statistic, "drift": c.drifted} for c in report.columns}}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    from evidently import (  # imported before the baseline (main)
        DataDefinition,
        Dataset,
        Report,
    )
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    done = time.perf_counter()
    result = snapshot.dict()
    columns = {}
    for test in result["tests"]:  # one per column; FAIL = drift detected, by Evidently's own rule
        params = test["metric_config"]["params"]
        if params.get("type", "").endswith("ValueDrift"):
            columns[params["column"]] = {"test": params["method"], "drift": test["status"] == "FAIL"}
    for metric in result["metrics"]:
        column = metric["config"].get("column")
        if column in columns:
            columns[column]["score"] = metric["value"]
    return {"seconds": done - started, "columns": columns}


def main() -> None:
    engine, data_dir = sys.argv[1], Path(sys.argv[2])
    warnings.filterwarnings("ignore")
    __import__("ml_assets.core.drift" if engine == "ml_assets" else "evidently.presets")  # imports are not the run's
    reference = pd.read_parquet(data_dir / "reference.parquet")
    current = pd.read_parquet(data_dir / "current.parquet")
    base = _rss_mb()
    data_mb = (reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()) / 2**20
    out = (run_ml_assets if engine == "ml_assets" else run_evidently)(reference, current)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**out, "engine": engine, "data_mb": data_mb, "extra_peak_mb": max(peak - base, 0.0)}))


if __name__ == "__main__":
    main()
