"""Batch scoring throughput: what the `churn/predictions` asset runs (`score_frame`: chunked
predict_proba + id columns + model version on every row) vs calling `predict_proba` directly on
the same 1M-row feature frame with the same fitted pipeline. Interleaved repeats, medians.

    .venv/bin/python benchmarks/batch_scoring.py [--rows 1000000] [--repeat 3]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ml_examples.churn.problem import CHURN

from common import fitted_pipeline, simulated_features
from ml_assets.core.scoring import score_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pipeline = fitted_pipeline()
    _, features = simulated_features(args.rows, day=1)
    features = features.drop(columns=[CHURN.data.target])
    print(f"{len(features):,} rows, model: {type(pipeline[-1]).__name__}")
    direct, platform = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        pipeline.predict_proba(features)
        direct.append(time.perf_counter() - started)
        started = time.perf_counter()
        out = score_frame(pipeline, features, CHURN, CHURN.registered_model_name, "1")
        platform.append(time.perf_counter() - started)
    assert len(out) == len(features)
    d, p = statistics.median(direct), statistics.median(platform)
    print("| | median s | rows/s |\n|---|---|---|")
    print(f"| `pipeline.predict_proba` (direct) | {d:.2f} | {len(features) / d / 1e6:.2f} M |")
    print(f"| `score_frame` (the predictions asset) | {p:.2f} | {len(features) / p / 1e6:.2f} M |")
    print(f"\nratio (asset / direct rows/s): {d / p:.2f}x  (target >= 0.8x)")


if __name__ == "__main__":
    main()
