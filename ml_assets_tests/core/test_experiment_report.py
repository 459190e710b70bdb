"""An experiment's evidence from served rows and late labels: per-arm losses, the daily path of the
sequential test, and where it stops."""

import numpy as np
import pandas as pd
from ml_examples.churn.problem import CHURN

from ml_assets.core.experiment_report import PATH_COLUMNS, decision_path, experiment_rows, sequential_test
from ml_assets.core.experiments import CHALLENGER_ARM, CHAMPION_ARM, CONTINUE, PROMOTE, STOP, arm_of

SPEC = CHURN.evolve(promotion="experiment", min_samples=300, max_days=20)
START = "2026-03-01"


def served(effect: float, days: int = 20, rows: int = 600, seed: int = 0, experiment: str = "exp-1") -> pd.DataFrame:
    """Labelled served rows: the champion predicts logit(p) + N(0, 1); the challenger's noise is
    scaled by (1 - effect). ab rows are answered by their arm; every row also has a shadow score."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        ids = [f"C{i}" for i in rng.integers(0, 50_000, rows)]
        p = rng.beta(2, 8, rows)
        logit = np.log(p / (1 - p))
        champion = 1 / (1 + np.exp(-(logit + rng.normal(0, 1, rows))))
        challenger = 1 / (1 + np.exp(-(logit + rng.normal(0, 1 - effect, rows))))
        arm = np.array([arm_of(i, experiment, 0.5) for i in ids])
        score = np.where(arm == CHALLENGER_ARM, challenger, champion)
        frames.append(pd.DataFrame({
            "customer_id": ids, "snapshot_date": pd.Timestamp(START) + pd.Timedelta(days=day),
            "experiment_id": experiment, "arm": arm, "score": score, "label": (score >= 0.5).astype(int),
            "shadow_score": np.where(arm == CHALLENGER_ARM, champion, challenger),
            "churned": (rng.random(rows) < p).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def _end(rows: pd.DataFrame, mode: str = "ab", today: str = "2026-03-20") -> pd.Series:
    path = decision_path(rows, SPEC, mode, START, today)
    assert list(path.columns) == PATH_COLUMNS
    return path.iloc[-1]


def test_a_better_challenger_is_promoted_and_the_path_stops_there():
    rows = served(effect=0.4)
    path = decision_path(rows, SPEC, "ab", START, "2026-03-20")
    assert path.iloc[-1]["action"] == PROMOTE and (path["action"].iloc[:-1] == CONTINUE).all()
    assert path.iloc[-1]["upper"] < 0 and path.iloc[-1]["statistic"] >= path.iloc[-1]["boundary"]
    assert path.iloc[-1]["challenger_loss"] < path.iloc[-1]["champion_loss"]


def test_a_worse_challenger_is_stopped():
    assert _end(served(effect=-0.4))["action"] == STOP


def test_the_same_model_twice_runs_to_the_horizon_and_keeps_the_champion():
    rows = served(effect=0.0, seed=3)
    assert _end(rows, today="2026-03-10")["action"] == CONTINUE
    last = _end(rows)
    assert last["action"] == STOP and "the champion stays" in last["reason"]


def test_nothing_is_decided_before_the_minimum_sample():
    first_day = decision_path(served(effect=0.6, days=1, rows=400), SPEC, "ab", START, START).iloc[-1]
    assert first_day["action"] == CONTINUE and "collecting" in first_day["reason"]


def test_shadow_is_paired_and_decides_sooner_than_two_arms():
    rows = served(effect=0.3, seed=5)
    on_challenger = rows["arm"] == CHALLENGER_ARM  # shadow: the champion answers all, the challenger only scores
    both = rows.assign(arm=CHAMPION_ARM, score=np.where(on_challenger, rows["shadow_score"], rows["score"]),
                       shadow_score=np.where(on_challenger, rows["score"], rows["shadow_score"]))
    shadow = decision_path(both, SPEC, "shadow", START, "2026-03-20")
    two_arms = decision_path(rows, SPEC, "ab", START, "2026-03-20")
    assert shadow.iloc[-1]["action"] == two_arms.iloc[-1]["action"] == PROMOTE
    assert len(shadow) < len(two_arms)  # days to the decision
    assert shadow.iloc[-1]["n_champion"] == shadow.iloc[-1]["n_challenger"]  # every row scored by both


def test_rows_of_another_experiment_are_not_counted():
    rows = pd.concat([served(effect=0.0, days=3, experiment="old"), served(effect=0.0, days=3, seed=1)])
    mine = experiment_rows(rows, "exp-1")
    assert (mine["experiment_id"] == "exp-1").all() and len(mine) == 1800
    result = sequential_test(mine, SPEC, "ab")
    assert result.n_champion + result.n_challenger == 1800


def test_a_miscalibrated_challenger_is_stopped_by_the_guardrail():
    rows = served(effect=0.0, seed=2)
    on_challenger = rows["arm"] == CHALLENGER_ARM
    inflated = rows.assign(score=np.where(on_challenger, np.clip(rows["score"] + 0.15, 0, 1), rows["score"]))
    last = decision_path(inflated, SPEC, "ab", START, "2026-03-20").iloc[-1]
    assert last["action"] == STOP and last["reason"].startswith("guardrail: the challenger is miscalibrated")
    assert decision_path(rows, SPEC, "ab", START, "2026-03-05").iloc[-1]["action"] == CONTINUE  # calibrated
