"""CLI: python -m ml_examples.churn.simulation --days 60 --scenario price_shock@45 --out data/landing"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from ml_assets import settings
from ml_examples.churn.simulation.world import (
    SCENARIOS,
    WorldConfig,
    parse_scenario,
    write_world,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_examples.churn.simulation", description=__doc__)
    parser.add_argument("--days", type=int, default=28, help="number of days to land")
    parser.add_argument("--start", type=date.fromisoformat, default=None,
                        help="first day (YYYY-MM-DD); default: so that the last day is yesterday")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME@DAY",
                        help=f"drift scenario starting on a day index; one of {sorted(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=None, help="landing directory")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows-per-day", type=int, default=1_500)
    parser.add_argument("--label-delay", type=int, default=7)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args(argv)
    start = args.start or date.today() - timedelta(days=args.days)
    try:
        cfg = WorldConfig(start_date=start, seed=args.seed, rows_per_day=args.rows_per_day,
                          label_delay_days=args.label_delay, file_format=args.format,
                          scenarios=tuple(parse_scenario(s) for s in args.scenario))
    except ValueError as err:
        parser.error(str(err))
    out = args.out or settings.landing_dir()
    files = write_world(cfg, args.days, out)
    print(f"landed {len(files)} files for {start} .. {cfg.day_date(args.days - 1)} under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
