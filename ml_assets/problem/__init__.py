"""The problem API: what a user writes in their own package to get the whole asset graph."""

from ml_assets.problem.loading import load_problem
from ml_assets.problem.sections import (
    CandidateSpec,
    DataSection,
    DatasetSpec,
    GateSection,
    MonitoringSection,
    RetrainingSection,
    SpecError,
    TrainingSection,
)
from ml_assets.problem.spec import ProblemSpec

__all__ = ["CandidateSpec", "DataSection", "DatasetSpec", "GateSection", "MonitoringSection", "ProblemSpec",
           "RetrainingSection", "SpecError", "TrainingSection", "load_problem"]
