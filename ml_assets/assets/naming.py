"""How a problem's assets are told apart in the UI: one group per problem and stage, owners and tags."""

from __future__ import annotations

from ml_assets.problem.spec import ProblemSpec


def problem_asset_args(spec: ProblemSpec, stage: str) -> dict:
    """Keyword arguments every asset of a problem carries: `loans_models`, `loans_monitoring`, … so
    two problems' `training_set` nodes never share a group on the graph."""
    return {"group_name": f"{spec.name}_{stage}", "owners": list(spec.owners),
            "tags": {"ml_assets/problem": spec.name}}
