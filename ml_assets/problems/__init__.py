"""ML problems as specs: each module describes its data and models; the platform builds the assets."""

from ml_assets.problems.spec import CandidateSpec, DatasetSpec, ProblemSpec

__all__ = ["CandidateSpec", "DatasetSpec", "ProblemSpec"]
