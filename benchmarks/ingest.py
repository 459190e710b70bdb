"""Ingestion throughput: a 1M-row landing file -> validated + quarantined Parquet tables -> features.

Runs the same functions the `validate_customers` asset runs (read_landing_file, split_valid_rows,
write_parquet), then the churn features (build_churn_features, write_parquet): the core path. Each
repetition is a fresh process so peak RSS is the pipeline's own. In the same session, interleaved:
the obvious baseline, pandas.read_csv + pandera's lazy validation of the same model (it only reports
failures; it does not split rows), and the same day through Dagster (`ingest_customers_job`), whose
wall time is compared with the core path's.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--repeat 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


def _peak_rss_mb() -> float:
    """This process's peak RSS. (ru_maxrss survives exec on Linux, so it would report the parent's.)"""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def make_file(rows: int, folder: Path) -> Path:
    from ml_examples.churn.simulation import WorldConfig, simulate_day

    cfg = WorldConfig(start_date=date(2026, 1, 1), population=int(rows * 1.2), rows_per_day=rows)
    frame, _ = simulate_day(cfg, 0)
    path = folder / "customers" / "customers_2026-01-01.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    return path


def measure_platform(path: Path) -> dict:
    from ml_examples.churn.problem import CUSTOMERS, ChurnFeatures, build_churn_features
    from upath import UPath

    from ml_assets.assets.types import dagster_type, keys_enforced
    from ml_assets.core.arrow_memory import prefer_jemalloc
    from ml_assets.core.ingest import read_landing_file
    from ml_assets.core.validation import split_valid_rows
    from ml_assets.io.io_managers import write_parquet

    schema, rss0 = CUSTOMERS.schema, _peak_rss_mb()
    allocator = prefer_jemalloc()  # validate_files, for one file, is these three calls after this one
    cpu0, t0 = time.process_time(), time.perf_counter()
    batch = read_landing_file(path, schema)
    t1 = time.perf_counter()
    result = split_valid_rows(batch, schema, {"snapshot_date": date(2026, 1, 1)})
    t2 = time.perf_counter()
    write_parquet(result.valid, UPath(path.parent / "valid.parquet"))
    write_parquet(result.quarantine, UPath(path.parent / "quarantine.parquet"))
    t3 = time.perf_counter()
    features = build_churn_features(result.valid)
    t4 = time.perf_counter()
    write_parquet(features, UPath(path.parent / "features.parquet"))
    t5, cpu = time.perf_counter(), time.process_time() - cpu0
    peak = _peak_rss_mb()
    # What the Dagster type checks of the two large outputs cost, with this project's types and with
    # plain pandera (what dagster-pandera runs); after the peak, which is the core path's own.
    checks = {}
    # the validate asset hands Dagster the validator's frame with its key enforcement recorded
    for label, schema, frame in (("validated", CUSTOMERS.model, keys_enforced(result.valid)),
                                 ("features", ChurnFeatures, features)):
        typed = dagster_type(schema)
        t = time.perf_counter()
        assert typed.type_check(None, frame).success  # the check ignores its context
        checks[f"type_check_{label}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        schema.validate(frame, lazy=True)
        checks[f"pandera_{label}_s"] = time.perf_counter() - t
    return {"rows_in": result.rows_in, "rows_valid": result.rows_valid, "rows_quarantined": result.rows_quarantined,
            "parse_s": t1 - t0, "validate_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
            "features_s": t4 - t3, "features_write_s": t5 - t4, "core_s": t5 - t0, "core_cpu_s": cpu, **checks,
            "peak_rss_mb": peak, "baseline_rss_mb": rss0, "allocator": allocator}


def measure_baseline(path: Path) -> dict:
    import pandas as pd
    import pandera.errors
    from ml_examples.churn.problem import CUSTOMERS

    t0 = time.perf_counter()
    frame = pd.read_csv(path, dtype={c: "category" for c in ("contract", "payment_method", "internet_service", "region")},
                        parse_dates=["snapshot_date"])
    t1 = time.perf_counter()
    try:
        CUSTOMERS.model.validate(frame, lazy=True)
        failures = 0
    except pandera.errors.SchemaErrors as err:
        failures = len(err.failure_cases)
    t2 = time.perf_counter()
    return {"rows_in": len(frame), "parse_s": t1 - t0, "validate_s": t2 - t1, "total_s": t2 - t0,
            "failure_cases": failures, "peak_rss_mb": _peak_rss_mb()}


def measure_dagster(path: Path) -> dict:
    """The day's ingestion job as Dagster runs it (in-process executor, ephemeral instance): the
    validate step adds the pandera type checks on both outputs, the IO manager's Parquet writes
    and the event log to the core path measured above."""
    import dagster as dg
    from ml_examples.problems import example_problems

    from ml_assets.definitions import build_definitions
    from ml_assets.io.io_managers import JsonIOManager, ParquetIOManager
    from ml_assets.mlflow.resource import default_mlflow_resource
    from ml_assets.sources.landing import LandingZoneResource

    with tempfile.TemporaryDirectory() as out:
        defs = build_definitions(example_problems(), {
            "io_manager": ParquetIOManager(base_path=f"{out}/warehouse"),
            "json_io_manager": JsonIOManager(base_path=f"{out}/warehouse"),
            "landing": LandingZoneResource(landing_dir=str(path.parent.parent), archive_dir=f"{out}/raw"),
            "mlflow": default_mlflow_resource("bench")})
        job = defs.resolve_job_def("ingest_customers_job")  # once per code location, not per run
        with dg.DagsterInstance.ephemeral() as instance:
            cpu0, t0 = time.process_time(), time.perf_counter()
            result = job.execute_in_process(instance=instance, partition_key=path.stem.rsplit("_", 1)[1])
            total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            started, steps = {}, {}
            for entry in instance.all_logs(result.run_id):
                event = entry.dagster_event
                if event and event.event_type_value == "STEP_START":
                    started[event.step_key] = entry.timestamp
                elif event and event.event_type_value == "STEP_SUCCESS":
                    steps[f"step_{event.step_key}_s"] = entry.timestamp - started[event.step_key]
    return {"run_s": total, "run_cpu_s": cpu, **steps, "peak_rss_mb": _peak_rss_mb()}


KINDS = {"platform": {}, "platform_mimalloc": {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}, "baseline": {},
         "dagster": {}}
MEASURE = {"platform": measure_platform, "platform_mimalloc": measure_platform, "baseline": measure_baseline,
           "dagster": measure_dagster}


def _in_subprocess(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", kind, str(path)], env={**os.environ, **KINDS[kind]},
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def _platform_line(label: str, p: dict) -> str:
    return (f"{label:<34} {p['rows_in'] / p['total_s'] / 1e6:5.2f} M rows/s  total {p['total_s']:.2f} s "
            f"(parse {p['parse_s']:.2f} s {p['parse_s'] / p['total_s']:.0%}, validate {p['validate_s']:.2f} s "
            f"{p['validate_s'] / p['total_s']:.0%}, write {p['write_s']:.2f} s {p['write_s'] / p['total_s']:.0%}); "
            f"peak RSS {p['peak_rss_mb']:.0f} MB (interpreter+imports {p['baseline_rss_mb']:.0f} MB)")


def _report(median: dict, runs: dict) -> None:
    p = median["platform"]
    print(_platform_line(f"ml_assets ingest ({p['allocator']})", p))
    print(f"  valid {p['rows_valid']:,.0f}, quarantined {p['rows_quarantined']:,.0f}; + features: build "
          f"{p['features_s']:.2f} s, write {p['features_write_s']:.2f} s; core path (ingest + features) "
          f"{p['core_s']:.2f} s")
    print(f"  Dagster type check, this project's type / plain pandera: validated {p['type_check_validated_s']:.2f} s"
          f" / {p['pandera_validated_s']:.2f} s, features {p['type_check_features_s']:.2f} s / "
          f"{p['pandera_features_s']:.2f} s")
    if "platform_mimalloc" in median:
        print(_platform_line(f"same, pyarrow's default ({median['platform_mimalloc']['allocator']})",
                             median["platform_mimalloc"]))
    if "baseline" in median:
        b = median["baseline"]
        print(f"baseline pandas.read_csv + pandera lazy validate: {b['rows_in'] / b['total_s'] / 1e6:5.2f} M rows/s  "
              f"total {b['total_s']:.2f} s (parse {b['parse_s']:.2f} s, validate {b['validate_s']:.2f} s); "
              f"peak RSS {b['peak_rss_mb']:.0f} MB; reports failures only, no split")
        print(f"speed-up vs baseline: {b['total_s'] / p['total_s']:.1f}x")
    if "dagster" in median:
        d = median["dagster"]
        ratios = [dr["run_s"] / pr["core_s"] for dr, pr in zip(runs["dagster"], runs["platform"])]
        print(f"\nthrough Dagster (ingest_customers_job, in-process, ephemeral instance): run {d['run_s']:.2f} s; "
              + ", ".join(f"{k[5:-2]} {v:.2f} s" for k, v in d.items() if k.startswith("step_"))
              + f"; peak RSS {d['peak_rss_mb']:.0f} MB")
        print(f"Dagster run / core path, wall: {d['run_s'] / p['core_s']:.2f}x (medians); per round "
              + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}x")
        # CPU seconds (all threads) move less than wall time when other work shares the cores
        print(f"Dagster run / core path, CPU: {d['run_cpu_s']:.2f} s / {p['core_cpu_s']:.2f} s = "
              f"{d['run_cpu_s'] / p['core_cpu_s']:.2f}x (medians)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS),
                        help="what to run (platform, the core path, always runs)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, path = args.measure
        print(json.dumps(MEASURE[kind](Path(path))))
        return
    kinds = ["platform", *(k for k in KINDS if k in args.kinds and k != "platform")]
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(args.rows, Path(tmp))
        size_mb = path.stat().st_size / 1e6
        for _ in range(args.repeat):  # interleaved, so drift in the machine's speed hits every kind alike
            for kind in kinds:
                runs[kind].append(_in_subprocess(kind, path))
    median = {kind: {k: statistics.median(r[k] for r in rs) if not isinstance(rs[0][k], str) else rs[0][k]
                     for k in rs[0]} for kind, rs in runs.items()}
    print(f"file: {args.rows:,} rows, {size_mb:.0f} MB CSV; median of {args.repeat} fresh-process runs each; "
          f"load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f}\n")
    _report(median, runs)


if __name__ == "__main__":
    main()
