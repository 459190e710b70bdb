"""Data beyond memory: the training window read the way it is today (every daily partition into one
pandas frame) vs streamed a day at a time (core/streaming.py), at 1M and 10M rows.

Generates (once, reused) 150 days x 66,666 rows of churn features and labels as the warehouse stores
them (one Parquet file per day; a labels file lands 7 days after the day it labels) under
data/bench/out_of_core/, plus two days to check for drift: the next normal day, and one with a
price shock and a new segment. Every step runs in a fresh process; each reports its wall time (after
imports) and peak RSS (getrusage ru_maxrss, imports included). Steps, as the assets run them:

- training_set: today = all partitions loaded (the IO manager's dict) + concat + build_training_set;
  streaming = scan_window with training.max_training_rows (and the window profile when capped);
  both write the training set Parquet as the IO manager does;
- profile: the reference_profile asset's `learned_profile` on the stored training set;
- drift: the saved profile vs each check day (compare);
- fit: HistGradientBoosting (the family the demo usually picks, default parameters: one fit, not
  the asset's search) on the train split, evaluated on the test split (evaluate_model);
- scoring: one day of features through score_frame (what the predictions asset runs per day).

    .venv/bin/python benchmarks/out_of_core.py              # ~1M and ~10M rows; generation ~2 min once
    .venv/bin/python benchmarks/out_of_core.py --today-10m  # also today's path at 10M, up to drift (~9 GB RSS)
"""

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "data" / "bench" / "out_of_core"
LABEL_DELAY = 7


def _world(rows: int):
    """(the normal world, the same world with a price shock and a new segment): validated data, no dirt."""
    from ml_examples.churn.simulation import WorldConfig, parse_scenario

    normal = WorldConfig(start_date=date(2026, 1, 1), rows_per_day=rows, population=int(rows * 1.2), dirty_rate=0.0)
    return normal, replace(normal, scenarios=(parse_scenario("price_shock@0"), parse_scenario("new_segment@0")))


def generate(folder: Path, days: int, rows: int) -> None:
    """Features and labels of `days` days, one file each; idempotent (a finished folder is kept)."""
    import pandas as pd
    from ml_examples.churn.problem import CHURN
    from ml_examples.churn.simulation import simulate_day
    from ml_examples.churn.simulation.world import _population

    from ml_assets.io.io_managers import write_parquet

    if (folder / "done").exists():
        return
    normal, drifted = _world(rows)
    pop = _population(normal)
    for day in range(days + 1):
        for cfg, name in ((normal, "normal"), (drifted, "drifted")) if day == days else ((normal, None),):
            customers, labels = simulate_day(cfg, day, pop)
            for frame in (customers, labels):
                frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
            features, stamp = CHURN.features_of(customers), f"{cfg.day_date(day):%Y-%m-%d}"
            if name:  # the days checked for drift and scored: after the window
                write_parquet(features, folder / "check" / f"{name}.parquet")
                continue
            write_parquet(features, folder / "features" / f"{stamp}.parquet")
            landed = cfg.day_date(day + LABEL_DELAY)
            write_parquet(labels, folder / "labels" / f"{landed:%Y-%m-%d}.parquet")
    (folder / "done").write_text("ok\n")


def _windows(folder: Path, days: int):
    """(features, labels) of the first `days` days: a window of that many labelled days."""
    from ml_assets.core.streaming import PartitionWindow

    features = sorted((folder / "features").glob("*.parquet"))[:days]
    labels = sorted((folder / "labels").glob("*.parquet"))[:days]
    return (PartitionWindow({p.stem: p for p in features}), PartitionWindow({p.stem: p for p in labels}),
            sum(p.stat().st_size for p in [*features, *labels]))


def _spec(days: int, cap: int | None):
    from ml_examples.churn.problem import CHURN

    return CHURN.evolve(window_days=max(days, 60), max_training_rows=cap)


def step(args) -> dict:
    """One measured step in this (fresh) process: every import first (counted in RSS, not in time)."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ml_assets.assets.monitoring import learned_profile, save_window_profile
    from ml_assets.core.arrow_memory import prefer_jemalloc
    from ml_assets.core.datasets import build_training_set, concat_partitions
    from ml_assets.core.drift import compare
    from ml_assets.core.evaluation import evaluate_model
    from ml_assets.core.lineage import frame_hash
    from ml_assets.core.profile import ReferenceProfile
    from ml_assets.core.scoring import score_frame
    from ml_assets.core.streaming import scan_window
    from ml_assets.core.training import build_pipeline
    from ml_assets.io.io_managers import write_parquet

    prefer_jemalloc()
    work, data = Path(args.work), Path(args.data)
    os.environ["ML_ASSETS_WAREHOUSE"] = str(work)  # where the asset functions keep the window profile
    spec = _spec(args.days, args.cap if args.path == "stream" else None)
    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, out = time.perf_counter(), {}
    if args.step == "training_set":
        features, labels, _ = _windows(data, args.days)
        if args.path == "today":
            frame = build_training_set(concat_partitions({k: features.read(k) for k in features.paths}),
                                       concat_partitions({k: labels.read(k) for k in labels.paths}), spec)
            out["rows_seen"] = len(frame)
        else:
            scan = scan_window(features, labels, spec, None, spec.training.max_training_rows, seed=0)
            frame, out["rows_seen"] = scan.frame, sum(scan.rows_seen.values())
            if scan.capped:
                save_window_profile(spec, frame_hash(frame), scan.profile)
        write_parquet(frame, work / "training_set.parquet")
        out["rows_used"] = len(frame)
    elif args.step == "profile":
        profile, out["profiled"] = learned_profile(spec, pd.read_parquet(work / "training_set.parquet"))
        with (work / "profile.npz").open("wb") as fh:
            profile.save(fh)
        out["profile_rows"], out["profile_mb"] = profile.rows, round((work / "profile.npz").stat().st_size / 1e6)
    elif args.step == "drift":
        with (work / "profile.npz").open("rb") as fh:
            profile = ReferenceProfile.load(fh)
        for name in ("normal", "drifted"):
            report = compare(profile, pd.read_parquet(data / "check" / f"{name}.parquet"), spec.monitoring.drift_share)
            out[name] = {"share": round(report.share, 3), "drifted": report.drifted_columns}
    elif args.step == "fit":
        frame = pd.read_parquet(work / "training_set.parquet")
        train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
        pipeline = build_pipeline(spec, HistGradientBoostingClassifier(random_state=0))
        pipeline.fit(train[spec.feature_columns], train[spec.data.target])
        metrics = evaluate_model(pipeline, test, spec).metrics
        out.update({"train_rows": len(train), "test_rows": len(test), "data_hash": frame_hash(frame)[:12],
                    **{k: round(float(metrics[k]), 4) for k in ("roc_auc", "pr_auc", "log_loss", "brier")}})
        (work / "model.pkl").write_bytes(pickle.dumps(pipeline))
    elif args.step == "scoring":
        pipeline = pickle.loads((work / "model.pkl").read_bytes())
        day = pd.read_parquet(data / "check" / "normal.parquet")
        scored = score_frame(pipeline, day, spec, spec.registered_model_name, "1")
        out["rows"], out["mean_score"] = len(scored), round(float(np.mean(scored["score"])), 4)
    out["seconds"] = round(time.perf_counter() - started, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["import_rss_mb"] = round(imported)
    return out


STEPS = ("training_set", "profile", "drift", "fit", "scoring")


def run_path(path: str, days: int, args, steps=STEPS) -> dict:
    work = CACHE / "work" / f"{path}_{days}d"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.rglob("*"):
        if old.is_file():
            old.unlink()
    results = {}
    for name in steps:
        cmd = [sys.executable, __file__, "--step", name, "--path", path, "--days", str(days), "--cap", str(args.cap),
               "--work", str(work), "--data", str(args.data)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            results[name] = {"failed": tail[0]}
            print(f"  {path} {days}d {name}: FAILED {tail[0]}", flush=True)
            break
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {path} {days}d {name}: {results[name]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--small-days", type=int, default=15)
    parser.add_argument("--rows-per-day", type=int, default=66_666)
    parser.add_argument("--cap", type=int, default=1_000_000, help="training.max_training_rows of the streaming path")
    parser.add_argument("--today-10m", action="store_true", help="also run today's path on the large window")
    parser.add_argument("--step", choices=STEPS)
    parser.add_argument("--path", choices=("today", "stream"))
    parser.add_argument("--work")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args)))
        return
    args.data = CACHE / f"{args.rows_per_day}x{args.days}"
    started = time.perf_counter()
    generate(args.data, args.days, args.rows_per_day)
    print(f"data: {args.data} ({time.perf_counter() - started:.0f} s)")
    summary = {}
    runs = [("today", args.small_days, STEPS), ("stream", args.small_days, STEPS), ("stream", args.days, STEPS)]
    # today's path on the large window: ~8.6 GB for the training set; its uncapped fit (9.6M rows)
    # would take most of an hour on 2 cores, so it stops at drift
    for path, days, steps in runs + ([("today", args.days, STEPS[:3])] if args.today_10m else []):
        size = _windows(args.data, days)[2]
        print(f"{path}, {days} days x {args.rows_per_day:,} rows, window Parquet {size / 1e6:.0f} MB", flush=True)
        summary[f"{path}_{days}d"] = {"parquet_mb": round(size / 1e6), **run_path(path, days, args, steps)}
    (CACHE / "results.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
