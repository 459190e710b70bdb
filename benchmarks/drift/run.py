"""Drift computation: ml_assets.core.drift vs Evidently's DataDriftPreset, same data, same run.

Reference = current = N rows (10 numeric + 4 categorical columns, shifts in some of them). Each
side runs in a fresh interpreter (Evidently in its own venv: it needs pandas < 3), reading the
same Parquet files. ml_assets is timed one-shot on both raw frames (`detect`, like Evidently) and,
separately, as the daily check (`compare` against a profile built at training time). Per-column
verdicts must agree; statistics are compared too. Peak memory is what each side adds to its data.

    make bench-drift                # builds .venv-evidently, then runs this
    .venv/bin/python benchmarks/drift/run.py --sizes 10000 100000 1000000 10000000
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data import make_frame


def _side(python: str, engine: str, data_dir: Path) -> dict:
    out = subprocess.run([python, str(HERE / "side.py"), engine, str(data_dir)], capture_output=True, text=True,
                         cwd=HERE, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--evidently-python", default=str(HERE.parents[1] / ".venv-evidently" / "bin" / "python"))
    parser.add_argument("--evidently-max", type=int, default=1_000_000, help="largest size Evidently runs on")
    parser.add_argument("--repeat", type=int, default=3, help="ml_assets runs per size (median time)")
    args = parser.parse_args()
    print(f"{'rows':>10} {'ml_assets s':>11} {'daily s':>8} {'evidently s':>11} {'speed-up':>8} "
          f"{'data MB':>8} {'ours +MB':>8} {'evid +MB':>8}  verdicts")
    for rows in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            make_frame(rows, 1, drifted=False).to_parquet(Path(tmp) / "reference.parquet")
            make_frame(rows, 2, drifted=True).to_parquet(Path(tmp) / "current.parquet")
            ours = [_side(sys.executable, "ml_assets", Path(tmp)) for _ in range(args.repeat)]
            theirs = _side(args.evidently_python, "evidently", Path(tmp)) if rows <= args.evidently_max else None
        best = sorted(ours, key=lambda r: r["seconds"])[len(ours) // 2]
        seconds = statistics.median(r["seconds"] for r in ours)
        line = f"{rows:>10,} {seconds:>11.3f} {statistics.median(r['compare_seconds'] for r in ours):>8.3f} "
        if theirs is None:
            print(line + f"{'-':>11} {'-':>8} {best['data_mb']:>8.0f} {best['extra_peak_mb']:>8.0f} {'-':>8}")
            continue
        agree = [c for c in best["columns"] if best["columns"][c]["drift"] == theirs["columns"][c]["drift"]]
        drifted = sorted(c for c in best["columns"] if best["columns"][c]["drift"])
        print(line + f"{theirs['seconds']:>11.2f} {theirs['seconds'] / seconds:>7.0f}x {best['data_mb']:>8.0f} "
              f"{best['extra_peak_mb']:>8.0f} {theirs['extra_peak_mb']:>8.0f}  {len(agree)}/{len(best['columns'])} "
              f"agree; drifted: {', '.join(drifted)}")
        for column, mine in best["columns"].items():
            other = theirs["columns"][column]
            if mine["drift"] != other["drift"] or abs(mine["score"] - other["score"]) > 1e-6 * max(1, abs(other["score"])):
                print(f"{'':>12}{column}: ours {mine['test']} {mine['score']:.6g} {mine['drift']}, "
                      f"evidently {other['test']} {other['score']:.6g} {other['drift']}")


if __name__ == "__main__":
    main()
