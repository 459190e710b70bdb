"""Automation conditions of the daily scoring and monitoring assets.

`AutomationCondition.eager()` only ever considers the newest partition by the wall clock
(`in_latest_time_window()`), so under the real daemon a day that lands after its date — a late
file, a catch-up after an outage, a re-ingested or backfilled day — would never be scored,
drift-checked or joined with its labels. These conditions keep eager()'s guards (no missing or
in-progress dependency, not in progress itself) but look back `lookback_days` partitions: any
day in that window whose own data updated is requested. Changes that concern every day at once
(a new champion, a new reference profile) still only re-run the newest day, as eager() does:
re-scoring a month of history with a new model would overwrite what the old one served.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

AC = dg.AutomationCondition


def _guarded(window: dg.AutomationCondition, updated: dg.AutomationCondition,
             missing: dg.AutomationCondition) -> dg.AutomationCondition:
    """eager()'s shape over `window`: requested once `updated` (or newly missing) since it was last
    handled, when no dependency in `missing` is missing and nothing is in progress.

    An update seen while a dependency was missing is forgotten (unlike eager()'s memory): a day
    ingested before the first champion existed is not scored in hindsight by a model trained on it.
    An update seen while a dependency is only in progress (a training run) is kept."""
    handled = AC.newly_requested() | AC.newly_updated() | AC.initial_evaluation()
    return window & (AC.newly_missing() | updated).since(handled | missing) & ~missing & \
        ~AC.any_deps_in_progress() & ~AC.in_progress()


def lookback(days: int) -> dg.AutomationCondition:
    """The newest `days` daily partitions (the newest one included)."""
    return AC.in_latest_time_window(lookback_delta=timedelta(days=days))


def follows_days(lookback_days: int, daily: dg.AssetSelection) -> dg.AutomationCondition:
    """eager() on the newest day, and every day of the look-back whose `daily` inputs updated
    (late, re-ingested or backfilled days)."""
    late = _guarded(lookback(lookback_days), AC.any_deps_updated().allow(daily), AC.any_deps_missing())
    return (AC.eager() | late).with_label(f"eager, or a day of the last {lookback_days} whose data updated")


def follows_labels(lookback_days: int, labels: dg.AssetKey) -> dg.AutomationCondition:
    """Every day of the look-back whose labels (or the predictions they join) updated; only the
    day's labels must exist: the trailing window of predictions always has gaps (days before the
    first champion, days whose labels are still to come)."""
    missing = AC.any_deps_missing().allow(dg.AssetSelection.assets(labels))
    return _guarded(lookback(lookback_days), AC.any_deps_updated(), missing).with_label(
        f"a day of the last {lookback_days} whose labels or predictions updated")
