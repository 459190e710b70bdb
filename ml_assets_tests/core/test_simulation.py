from datetime import date

import numpy as np
import pandas as pd
import pytest
from ml_examples.churn.simulation import ArmEffect, WorldConfig, parse_scenario, simulate_day, write_world
from ml_examples.churn.simulation.__main__ import main as simulation_cli
from ml_examples.churn.simulation.world import churn_probability

START = date(2026, 1, 1)


def _cfg(**kw):
    return WorldConfig(start_date=START, rows_per_day=400, population=4_000, **kw)


def test_a_day_is_reproducible_on_its_own():
    a_customers, a_labels = simulate_day(_cfg(), 9)
    b_customers, b_labels = simulate_day(_cfg(), 9)
    pd.testing.assert_frame_equal(a_customers, b_customers)
    pd.testing.assert_frame_equal(a_labels, b_labels)
    assert not simulate_day(_cfg(seed=8), 9)[0].equals(a_customers)


def test_labels_land_after_the_delay(tmp_path):
    files = write_world(_cfg(label_delay_days=3), 5, tmp_path)
    names = sorted(p.name for p in files)
    assert names.count("labels_2026-01-04.csv") == 1 and "labels_2026-01-03.csv" not in names
    labels = pd.read_csv(tmp_path / "labels" / "labels_2026-01-05.csv")
    assert set(labels["snapshot_date"]) == {"2026-01-02"}  # day 1's snapshots, 3 days later
    assert not list(tmp_path.rglob(".*"))  # atomic writes leave no temp files


def test_parquet_format(tmp_path):
    write_world(_cfg(file_format="parquet", dirty_rate=0.05), 1, tmp_path)
    frame = pd.read_parquet(tmp_path / "customers" / "customers_2026-01-01.parquet")
    assert len(frame) == 400


def test_dirty_rows_are_injected_at_the_configured_rate():
    clean, _ = simulate_day(_cfg(dirty_rate=0.0), 0)
    dirty, _ = simulate_day(_cfg(dirty_rate=0.05), 0)
    assert (clean.astype(str) != dirty.astype(str)).any(axis=1).sum() == pytest.approx(20, abs=12)


@pytest.mark.parametrize("scenario, check", [
    ("price_shock", lambda before, after: after["monthly_charges"].mean() > 1.15 * before["monthly_charges"].mean()),
    ("new_segment", lambda before, after: "metro" not in set(before["region"]) and (after["region"] == "metro").mean() > 0.25),
    ("quality_incident", lambda before, after: after["monthly_charges"].isna().mean() > 0.1),
    ("schema_change", lambda before, after: "MonthlyCharges" in after and "monthly_charges" not in after),
])
def test_scenarios_start_on_their_day(scenario, check):
    cfg = _cfg(dirty_rate=0.0, scenarios=(parse_scenario(f"{scenario}@3"),))
    before, _ = simulate_day(cfg, 2)
    after, _ = simulate_day(cfg, 3)
    assert check(before, after)


def test_concept_drift_changes_the_truth_not_the_inputs():
    cfg = _cfg(dirty_rate=0.0, scenarios=(parse_scenario("concept_drift@0"),))
    snapshot, _ = simulate_day(_cfg(dirty_rate=0.0), 1)
    pd.testing.assert_frame_equal(simulate_day(cfg, 1)[0], snapshot)
    assert not np.allclose(churn_probability(snapshot), churn_probability(snapshot, concept_drift=True))


def test_an_arm_effect_changes_only_the_challenger_arms_labels_in_its_direction():
    """A known right answer for an experiment: labels of the entities routed to the challenger
    follow the likelier outcome more often (effect > 0) or less often (effect < 0)."""
    from ml_assets.core.experiments import CHALLENGER_ARM, arm_of

    base = WorldConfig(start_date=START, rows_per_day=4_000, population=8_000, dirty_rate=0.0)
    customers, labels = simulate_day(base, 2)
    p = churn_probability(customers)
    routed = np.array([arm_of(i, "exp-7", 0.5) == CHALLENGER_ARM for i in customers["customer_id"]])
    likely = (p >= 0.5).astype(int)

    def agreement(effect: float) -> tuple[float, float]:
        cfg = WorldConfig(start_date=START, rows_per_day=4_000, population=8_000, dirty_rate=0.0,
                          arm_effect=ArmEffect("exp-7", 0.5, effect))
        got = simulate_day(cfg, 2)[1]["churned"].to_numpy()
        assert (got[~routed] == labels["churned"].to_numpy()[~routed]).all()  # the champion's traffic is untouched
        return (got == likely)[routed].mean(), (labels["churned"].to_numpy() == likely)[routed].mean()

    better, before = agreement(0.3)
    worse, _ = agreement(-0.3)
    assert 1 - better < 0.8 * (1 - before) and worse < before - 0.2  # 30 % of the arm moved
    pd.testing.assert_frame_equal(simulate_day(base, 2)[1], simulate_day(
        WorldConfig(start_date=START, rows_per_day=4_000, population=8_000, dirty_rate=0.0,
                    arm_effect=ArmEffect("exp-7", 0.5, 0.0)), 2)[1])  # effect 0 is an A/A world
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        ArmEffect("exp-7", 0.5, 1.5)


def test_churn_rate_is_plausible():
    _, labels = simulate_day(WorldConfig(start_date=START, rows_per_day=4_000, population=8_000), 0)
    assert 0.05 < labels["churned"].mean() < 0.3


@pytest.mark.parametrize("text, message", [
    ("price_shock", "must look like"), ("meteor@3", "unknown scenario"), ("price_shock@-1", "must look like")])
def test_bad_scenarios(text, message):
    with pytest.raises(ValueError, match=message):
        parse_scenario(text)


def test_bad_config():
    with pytest.raises(ValueError, match="rows_per_day cannot exceed population"):
        WorldConfig(start_date=START, population=10, rows_per_day=11)
    with pytest.raises(ValueError, match="file_format"):
        WorldConfig(start_date=START, file_format="xlsx")


def test_cli(tmp_path, capsys):
    assert simulation_cli(["--days", "3", "--start", "2026-01-01", "--rows-per-day", "50",
                           "--label-delay", "1", "--scenario", "price_shock@2", "--out", str(tmp_path)]) == 0
    assert "landed 5 files" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        simulation_cli(["--scenario", "nope@1", "--out", str(tmp_path)])
