"""Thin asset wrappers by group; the logic they call lives in ml_assets.core."""
