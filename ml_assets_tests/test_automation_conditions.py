"""The scoring and monitoring conditions on a real instance: late, re-ingested and backfilled days
within the look-back are requested, not only the newest partition by the wall clock."""

from datetime import datetime, timezone

import dagster as dg
import pytest
from ml_examples.churn.problem import CHURN

NOW = datetime(2026, 1, 11, 1, tzinfo=timezone.utc)  # the newest complete partition is 2026-01-10
FEATURES, LABELS = dg.AssetKey(["churn", "features"]), dg.AssetKey("validated_labels")
SCORED = [dg.AssetKey(["churn", "predictions"]), dg.AssetKey(["churn", "drift_report"])]
PERFORMANCE = dg.AssetKey(["churn", "performance"])


def _land(instance, key: dg.AssetKey, *partitions: str | None) -> None:
    for partition in partitions:  # a materialization as a run would record it, without running anything
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


class Ticks:
    """Consecutive evaluations of the Definitions' conditions, as the automation sensor does."""

    def __init__(self, defs, instance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def __call__(self) -> dict[dg.AssetKey, set[str]]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, evaluation_time=NOW,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        return {key: set(result.get_requested_partitions(key)) for key in [*SCORED, PERFORMANCE]}


@pytest.fixture
def ticks(defs, instance):
    _land(instance, dg.AssetKey(["churn", "champion"]), None)
    _land(instance, dg.AssetKey(["churn", "reference_profile"]), None)
    _land(instance, FEATURES, *(f"2026-01-0{d}" for d in range(1, 9)))
    tick = Ticks(defs, instance)
    tick()  # the first evaluation only starts watching
    return tick


def test_a_day_landed_late_is_scored_and_drift_checked_with_the_newest(ticks, instance):
    _land(instance, FEATURES, "2026-01-10", "2026-01-05")  # the newest day, and a re-ingested older one
    requested = ticks()
    assert requested[SCORED[0]] == requested[SCORED[1]] == {"2026-01-05", "2026-01-10"}
    assert ticks()[SCORED[0]] == set()  # requested once: handled until its features change again


def test_a_day_older_than_the_look_back_is_left_to_a_backfill(ticks, instance):
    _land(instance, FEATURES, "2025-11-01")  # 71 days before the newest: outside label_window_days
    assert CHURN.monitoring.label_window_days < 71 and ticks()[SCORED[0]] == set()


def test_a_new_champion_rescores_only_the_newest_day(ticks, instance):
    _land(instance, FEATURES, "2026-01-10", "2026-01-05")
    for key, partitions in ticks().items():
        _land(instance, key, *partitions)  # the runs it requested
    assert ticks()[SCORED[0]] == set()
    _land(instance, dg.AssetKey(["churn", "champion"]), None)  # history keeps the versions that served it
    assert ticks()[SCORED[0]] == {"2026-01-10"}


def test_late_labels_are_joined_for_their_own_day(ticks, instance):
    _land(instance, LABELS, "2026-01-06")  # labels for an older day arrive after the newest day
    assert ticks()[PERFORMANCE] == {"2026-01-06"}


def test_days_ingested_before_the_first_champion_are_not_scored_in_hindsight(defs, instance):
    _land(instance, dg.AssetKey(["churn", "reference_profile"]), None)
    tick = Ticks(defs, instance)
    tick()
    _land(instance, FEATURES, "2026-01-05", "2026-01-10")
    assert tick()[SCORED[0]] == set()  # no champion: nothing to score with
    _land(instance, dg.AssetKey(["churn", "champion"]), None)
    assert tick()[SCORED[0]] == {"2026-01-10"}  # the newest day, as eager() does; not the older one


def test_served_predictions_are_built_each_night_for_the_day_before(defs, instance):
    """README: `churn/served_predictions` is built each night (00:30 UTC) for the day before."""
    served, cursor, requested = dg.AssetKey(["churn", "served_predictions"]), None, []
    for moment in (datetime(2026, 1, 11, 0, 20, tzinfo=timezone.utc), datetime(2026, 1, 11, 0, 40, tzinfo=timezone.utc),
                   datetime(2026, 1, 11, 12, tzinfo=timezone.utc)):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=moment, cursor=cursor)
        cursor = result.cursor
        requested.append(set(result.get_requested_partitions(served)))
    assert requested == [set(), {"2026-01-10"}, set()]  # once, after 00:30, for yesterday
