"""The code location the e2e daemon loads: the platform's Definitions factory with churn sized for
a test (one search iteration; a drift episode needs 7 labeled days; a latency budget a shared test
machine meets, as the servable gate's own tests cover the budget). Everything else, sensor
intervals and the retrain cooldown included, comes from the environment, as in a deployment."""

import dataclasses

from ml_assets.definitions import build_definitions
from ml_assets.problems.churn import CHURN

E2E = dataclasses.replace(CHURN, search_iterations=1, retrain_min_labeled_days=7, latency_budget_ms=2_000)

defs = build_definitions(problems=(E2E,))
