"""ML problems as specs: each module describes its data contracts; the platform builds the assets."""

from ml_assets.problems.spec import DatasetSpec

__all__ = ["DatasetSpec"]
