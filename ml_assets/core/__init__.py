"""Pure logic: no Dagster import anywhere below this package."""
