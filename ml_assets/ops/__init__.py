"""Operator tools: the `ml-assets` CLI, the Prometheus exporter, and finding the code location."""
