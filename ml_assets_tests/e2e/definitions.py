"""The code location the e2e daemon loads: the platform's Definitions factory with churn sized for
a test: logistic regression only, one search iteration; one validation and one test day, so a drift episode needs 3 labeled
days (fewer days to land, each a run the daemon launches); a latency budget a shared test machine
meets (the servable gate's own tests cover the budget). Everything else, sensor
intervals and the retrain cooldown included, comes from the environment, as in a deployment."""


from ml_examples.churn.problem import CHURN

from ml_assets.definitions import build_definitions

# a changed candidate list cannot be recorded as an override: the variant is found by its own reference
E2E = CHURN.evolve(ref="ml_assets_tests.e2e.definitions:E2E", candidates=CHURN.training.candidates[:1],
                   search_iterations=1, validation_days=1, test_days=1, min_labeled_days=3, latency_budget_ms=2_000)

defs = build_definitions((E2E,))
