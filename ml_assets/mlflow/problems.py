"""The problem of a registered model, from the reference its version records: how the gate's
canary, the scoring service and the CLI find a problem defined in the user's own package."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml_assets.mlflow.registry import CHAMPION
from ml_assets.problem.loading import problem_from_tags
from ml_assets.problem.sections import SpecError
from ml_assets.problem.spec import ProblemSpec, model_name


def problem_of_version(client: MlflowClient, name: str, version: str) -> ProblemSpec:
    return problem_from_tags(client.get_model_version(name, str(version)).tags, name)


def served_problem(client: MlflowClient, problem: str) -> ProblemSpec:
    """The champion's problem, else the newest version's (a service may start before the first
    promotion and serve as soon as one happens)."""
    name = model_name(problem)
    try:
        version = client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        versions = client.search_model_versions(f"name = '{name}'", max_results=1, order_by=["version_number DESC"])
        if not versions:
            raise SpecError(f"no version of {name} is registered in this MLflow store: train problem {problem!r} "
                            "first (its train job), or point --tracking-uri at the store it was trained into") from None
        version = versions[0].version
    return problem_of_version(client, name, version)
