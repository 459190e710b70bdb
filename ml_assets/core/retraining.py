"""When monitoring results call for a retrain: drift episodes, label readiness, cooldown. Pure.

An episode is the trailing run of monitored days on which data drifted or realized performance
dropped; `gap` healthy days in a row end it (one day under a threshold is noise, not recovery). One episode gets one retrain
(its run key is the episode's first day), requested once enough of its days have labels: right
after drift begins no label describes the new world yet, and a retrain then would relearn the
old one. Retraining then learns from the episode's days on (`since`), the world as it now is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decision:
    request: bool
    reason: str
    episode: str | None = None
    run_key: str | None = None


@dataclass(frozen=True)
class RetrainState:
    """What a sensor keeps between ticks (its cursor)."""

    episode: str | None = None  # first day of the open episode: it keeps this identity while it lasts
    requested: bool = False  # the open episode already got its retrain
    last_request: float | None = None  # epoch seconds, for the cooldown

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> RetrainState:
        """An unreadable cursor (another version's, or damaged) starts fresh rather than failing every
        tick: a request it forgets is still deduplicated by its run key."""
        try:
            return cls(**json.loads(text)) if text else cls()
        except (ValueError, TypeError):
            return cls()


def _trailing_run(flags: dict[str, bool], gap: int) -> str | None:
    start, healthy = None, 0
    for day in sorted(flags, reverse=True):
        if flags[day]:
            start, healthy = day, 0
        else:
            healthy += 1
            if healthy >= gap:
                break
    return start


def episode_start(drifted: dict[str, bool], dropped: dict[str, bool], gap: int = 3) -> str | None:
    """First day of the trailing run of drifted days or of dropped days (labels lag the drift
    reports by days, so each signal is read on its own days), the earlier of the two."""
    starts = [s for s in (_trailing_run(drifted, gap), _trailing_run(dropped, gap)) if s]
    return min(starts) if starts else None


def decide(problem: str, drifted: dict[str, bool], dropped: dict[str, bool], labeled_days: set[str],
           state: RetrainState, now: float, min_labeled_days: int, cooldown_seconds: float,
           gap: int = 3) -> tuple[Decision, RetrainState]:
    """drifted: day -> dataset drift; dropped: snapshot day -> realized performance drop;
    labeled_days: snapshot days whose labels have been joined with predictions."""
    if not drifted and not dropped:
        return Decision(False, "no drift report or performance result yet"), state
    start = episode_start(drifted, dropped, gap)
    if start is None:
        latest = max(set(drifted) | set(dropped))
        return Decision(False, f"no drift or performance drop in the last {gap} monitored days (up to {latest})"), \
            RetrainState(last_request=state.last_request)
    # Once retrained, the episode keeps its identity (its run key) while it lasts. Until then it
    # starts where the monitored days say: runs finish out of order, and a drift report of an
    # earlier day that lands after a later one's moves the start back, so its labels count too.
    episode = state.episode if state.requested and state.episode else start
    open_state = RetrainState(episode, state.requested, state.last_request)
    if state.requested:
        return Decision(False, f"drift episode since {episode} already retrained; waiting for it to end",
                        episode), open_state
    labeled = sum(day >= episode for day in labeled_days)
    if labeled < min_labeled_days:
        return Decision(False, f"drift episode since {episode}: waiting for labels ({labeled}/{min_labeled_days} "
                               "days of the episode labeled)", episode), open_state
    if state.last_request is not None and now - state.last_request < cooldown_seconds:
        return Decision(False, f"drift episode since {episode}: in cooldown ({(now - state.last_request) / 3600:.1f}"
                               f" h since the last retrain request, {cooldown_seconds / 3600:.0f} h required)",
                        episode), open_state
    return Decision(True, f"drift episode since {episode} with {labeled} labeled day(s): retrain", episode,
                    f"{problem}-retrain-{episode}"), RetrainState(episode, True, now)
