"""The simulated churn world: daily landing files, late labels, drift on demand."""

from ml_examples.churn.simulation.world import (
    SCENARIOS,
    ArmEffect,
    ScenarioStart,
    WorldConfig,
    parse_scenario,
    simulate_day,
    write_world,
)

__all__ = ["SCENARIOS", "ArmEffect", "ScenarioStart", "WorldConfig", "parse_scenario", "simulate_day", "write_world"]
