"""Dagster Components of the platform: problems declared in YAML, defined in the user's code."""

from ml_assets.components.ml_problems import MLProblems, ProblemEntry

__all__ = ["MLProblems", "ProblemEntry"]
