"""Online experiments: how often the sequential test promotes a challenger that is no better (A/A),
how often it promotes a better one (power), and after how many days.

Each simulated experiment is a stream of daily traffic with late labels, scored per row by the
log loss, decided every day by `ml_assets.core.experiments.decide` on every label so far:

- a population of entities with a true churn probability p (Beta(2, 8): about 20 % churn);
- `rows` requests a day from entities drawn at random; each entity's arm is the sticky hash of
  the experiment id and its id (so an entity seen twice stays in its arm);
- the champion predicts logit(p) + N(0, 1) noise: a decent but imperfect model; the challenger
  has its noise scaled by (1 - effect): effect 0 is an A/A test (the same model twice), 0.2 a
  challenger with 20 % less error in the logit;
- a label arrives `delay` days after its prediction.

    .venv/bin/python benchmarks/experiments.py                 # 1,000 A/A + 200 per effect, ~1 min
    .venv/bin/python benchmarks/experiments.py --sims 200      # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ml_assets.core.experiments import CHALLENGER_ARM, PROMOTE, STOP, arm_of, decide, msprt


def simulate(seed: int, effect: float, days: int, rows: int, delay: int, share: float, alpha: float,
             min_samples: int, population: int = 20_000) -> tuple[str, int, float]:
    """(decision, day it was made, challenger - champion mean loss then) for one seeded experiment."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 8, population)
    logit = np.log(p / (1 - p))
    experiment = f"sim-{seed}"
    challenger = np.array([arm_of(i, experiment, share) == CHALLENGER_ARM for i in range(population)])
    losses = {False: [], True: []}
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # (label day, entities, their loss)
    for day in range(1, days + 1):
        who = rng.integers(0, population, rows)
        noise = rng.normal(0, 1, rows) * np.where(challenger[who], 1 - effect, 1.0)
        q = 1 / (1 + np.exp(-(logit[who] + noise)))
        y = rng.random(rows) < p[who]
        loss = -np.where(y, np.log(q), np.log1p(-q))
        pending.append((day + delay, who, loss))
        for _, arrived_who, arrived_loss in [x for x in pending if x[0] == day]:
            for arm in (False, True):
                losses[arm].append(arrived_loss[challenger[arrived_who] == arm])
        if day <= delay:
            continue
        result = msprt(np.concatenate(losses[False]), np.concatenate(losses[True]), alpha)
        decision = decide(result, day, min_samples, days)
        if decision.action != "continue":
            return decision.action, day, result.difference
    return STOP, days, result.difference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=200, help="experiments per effect size")
    parser.add_argument("--aa-sims", type=int, default=1000, help="A/A experiments (effect 0)")
    parser.add_argument("--days", type=int, default=28, help="maximum duration")
    parser.add_argument("--rows", type=int, default=2000, help="requests per day")
    parser.add_argument("--delay", type=int, default=3, help="days until a label arrives")
    parser.add_argument("--share", type=float, default=0.5, help="share of entities on the challenger")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-samples", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.rows} requests/day, labels after {args.delay} days, challenger share {args.share}, "
          f"alpha {args.alpha}, min {args.min_samples} labelled rows per arm, max {args.days} days")
    print("| effect | mean loss difference | sims | promoted | stopped (worse) | stopped (max days) "
          "| median days to decision | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for effect in (0.0, 0.05, 0.1, 0.2, 0.3, -0.2):
        sims = args.aa_sims if effect == 0 else args.sims
        start = time.perf_counter()
        outcomes = [simulate(seed, effect, args.days, args.rows, args.delay, args.share, args.alpha, args.min_samples)
                    for seed in range(sims)]
        promoted = sum(action == PROMOTE for action, _, _ in outcomes)
        early_stop = sum(action == STOP and day < args.days for action, day, _ in outcomes)
        timeout = sims - promoted - early_stop
        decided = [day for action, day, _ in outcomes if action == PROMOTE or day < args.days]
        median = f"{np.median(decided):.0f}" if decided else "—"
        difference = np.mean([d for _, _, d in outcomes])
        print(f"| {effect:+.2f} | {difference:+.4f} | {sims} | {promoted / sims:.1%} | {early_stop / sims:.1%} | {timeout / sims:.1%} "
              f"| {median} | {time.perf_counter() - start:.0f} |")


if __name__ == "__main__":
    main()
