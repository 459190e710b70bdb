"""Drift episodes: one retrain per episode, only once the episode has labels, with a cooldown."""

from ml_assets.core.retraining import RetrainState, decide, episode_start

DAYS = [f"2026-03-{d:02d}" for d in range(1, 21)]


def _flags(drifted_from: int | None, until: int = 20) -> dict[str, bool]:
    return {DAYS[i]: drifted_from is not None and i >= drifted_from for i in range(until)}


FRESH = RetrainState()  # frozen: one shared default is safe


def _decide(drifted, dropped=None, labeled=(), state=FRESH, now=1e6, min_labeled=3, cooldown=0):
    return decide("churn", drifted, dropped or {}, set(labeled), state, now, min_labeled, cooldown)


def test_episode_is_the_trailing_run_of_either_signal():
    assert episode_start(_flags(None), {}) is None
    assert episode_start(_flags(12), {}) == DAYS[12]
    assert episode_start({**_flags(12), DAYS[15]: False}, {}) == DAYS[12]  # one healthy day is noise
    three_healthy = {**_flags(12), **dict.fromkeys(DAYS[14:17], False)}
    assert episode_start(three_healthy, {}) == DAYS[17]  # three in a row end the episode
    assert episode_start(_flags(12, until=15) | dict.fromkeys(DAYS[15:18], False), {}) is None
    assert episode_start(_flags(None), {DAYS[8]: True, DAYS[9]: True}) == DAYS[8]  # labels lag: own days
    assert episode_start(_flags(12), {DAYS[10]: True}) == DAYS[10]


def test_waits_for_labels_then_requests_once_per_episode():
    decision, state = _decide(_flags(12), labeled=DAYS[:14])
    assert not decision.request and "waiting for labels (2/3" in decision.reason and state.episode == DAYS[12]
    decision, state = _decide(_flags(12), labeled=DAYS[:15], state=state)
    assert decision.request and decision.run_key == f"churn-retrain-{DAYS[12]}" and decision.episode == DAYS[12]
    for tick in range(5):  # the condition persists over many ticks
        decision, state = _decide(_flags(12), labeled=DAYS[:16 + tick], state=state)
        assert not decision.request and "already retrained" in decision.reason


def test_an_earlier_drifted_day_reported_late_moves_the_episode_start_before_the_retrain():
    # the daemon ran two days' drift reports at once and the later day's finished first
    decision, state = _decide({**_flags(None, until=12), DAYS[13]: True}, labeled=DAYS[:14])
    assert "since " + DAYS[13] in decision.reason and "(1/3" in decision.reason
    decision, state = _decide(_flags(12, until=14), labeled=DAYS[:15], state=state)
    assert decision.request and decision.episode == DAYS[12] and decision.run_key == f"churn-retrain-{DAYS[12]}"


def test_an_open_episode_keeps_its_identity_while_signals_shift():
    _, state = _decide(_flags(12), labeled=DAYS[:20])
    assert state.requested and state.episode == DAYS[12]
    # drift cleared after the new champion, but old predictions' labels still show a drop
    decision, state = _decide(_flags(None), {DAYS[13]: True, DAYS[14]: True}, DAYS[:20], state)
    assert not decision.request and state.episode == DAYS[12]


def test_a_new_episode_after_a_healthy_day_retrains_again_after_the_cooldown():
    _, state = _decide(_flags(12), labeled=DAYS[:20], now=1000.0, cooldown=3600)
    _, state = _decide(_flags(None), labeled=DAYS[:20], state=state, now=1100.0, cooldown=3600)
    assert state.episode is None and not state.requested and state.last_request == 1000.0
    decision, state = _decide(_flags(5), labeled=DAYS[:20], state=state, now=2000.0, cooldown=3600)
    assert not decision.request and "cooldown" in decision.reason
    decision, _ = _decide(_flags(5), labeled=DAYS[:20], state=state, now=5000.0, cooldown=3600)
    assert decision.request and decision.episode == DAYS[5]


def test_state_round_trips_and_no_results_is_a_reason():
    state = RetrainState(DAYS[3], True, 12.5)
    assert RetrainState.from_json(state.to_json()) == state and RetrainState.from_json(None) == RetrainState()
    for damaged in ("{not json", '{"episode": "2026-03-01", "unknown_field": 1}', "[1, 2]"):
        assert RetrainState.from_json(damaged) == RetrainState()
    decision, same = _decide({}, {})
    assert not decision.request and "no drift report" in decision.reason and same == RetrainState()
