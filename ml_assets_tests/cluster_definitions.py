"""The code location the cluster test serves: churn sized for a test, as the e2e daemon's (one
search iteration; one validation and one test day, so a drift episode needs 3 labeled days), but
with two candidate families, so the training steps have two Celery workers to go to."""

from ml_examples.churn.problem import CHURN

from ml_assets.definitions import build_definitions

CLUSTER = CHURN.evolve(ref="ml_assets_tests.cluster_definitions:CLUSTER", candidates=CHURN.training.candidates[:2],
                       search_iterations=1, validation_days=1, test_days=1, min_labeled_days=3,
                       latency_budget_ms=2_000)

defs = build_definitions((CLUSTER,))
