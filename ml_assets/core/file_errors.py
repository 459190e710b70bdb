"""What a landing file can be wrong with: the shared vocabulary of the CSV and Parquet readers."""

from __future__ import annotations

from dataclasses import dataclass

NULL_TEXT = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


class LandingFileError(ValueError):
    """The file as a whole cannot be ingested; nothing from it moves downstream."""

    def __init__(self, file: str, problem: str, fix: str):
        self.file, self.problem, self.fix = file, problem, fix
        super().__init__(f"{file}: {problem}. Fix: {fix}")


@dataclass
class MalformedRow:
    line: int | None
    text: str
    problem: str
