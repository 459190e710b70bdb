"""MLflow integration: one ConfigurableResource (tracking + registry), run logging, aliases, and the
problem a registered version records."""
