"""The code location the e2e daemon loads: the platform's Definitions factory with churn sized for
a test: logistic regression only, one search iteration; one validation and one test day, so a drift episode needs 3 labeled
days (fewer days to land, each a run the daemon launches); a latency budget a shared test machine
meets (the servable gate's own tests cover the budget). Everything else, sensor
intervals and the retrain cooldown included, comes from the environment, as in a deployment."""

import dataclasses

from ml_assets.definitions import build_definitions
from ml_assets.problems.churn import CHURN

E2E = dataclasses.replace(CHURN, candidates=CHURN.candidates[:1], search_iterations=1, validation_days=1, test_days=1,
                          retrain_min_labeled_days=3, latency_budget_ms=2_000)

defs = build_definitions(problems=(E2E,))
