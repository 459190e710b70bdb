"""Public helpers to tick sensors and automation on a real instance in tests and demos."""
