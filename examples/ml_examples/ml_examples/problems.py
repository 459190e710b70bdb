"""The example problems by reference, as defs/problems/defs.yaml lists them."""

from ml_assets.problem import ProblemSpec, load_problem

REFS = ("ml_examples.churn.problem:CHURN", "ml_examples.bundled:WINE", "ml_examples.bundled:DIABETES")


def example_problems() -> tuple[ProblemSpec, ...]:
    return tuple(load_problem(ref) for ref in REFS)
