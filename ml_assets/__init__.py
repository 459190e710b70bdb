"""ml_assets: ML pipelines as code on Dagster."""

__version__ = "0.1.0"
