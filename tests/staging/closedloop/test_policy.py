"""Intervention policy (staging/closedloop/policy.py): safety limits, veto, retries, logging."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headset.errors import HeadsetError
from staging.closedloop.policy import (
    DEFAULT_LADDER,
    Decision,
    InterventionPolicy,
    LadderStep,
    PolicyConfig,
)

W, N1, N2, N3, R, U = 0, 1, 2, 3, 4, -1


class Device:
    """Records commands; acknowledges according to a script (True/False/exception)."""

    def __init__(self, answers=None):
        self.calls = []
        self.answers = list(answers or [])

    def __call__(self, kind, level, duration_s):
        self.calls.append((kind, level, duration_s))
        a = self.answers.pop(0) if self.answers else True
        if isinstance(a, Exception):
            raise a
        return a


def _run(policy, seq, dt=1.0, t0=0.0):
    """Feed (stage, alert, risk) triples one per dt seconds."""
    t = t0
    for stage, alert, risk in seq:
        policy.update(t, stage, alert, risk)
        t += dt
    return t


def test_soft_cue_first_then_escalation_then_reset():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=30, min_interval_s=10, resolve_s=60))
    # alert for 100 s in REM with rising risk
    _run(pol, [(R, True, 0.5 + 0.004 * i) for i in range(100)])
    kinds = [c[0] for c in dev.calls]
    first = (DEFAULT_LADDER[0].kind, DEFAULT_LADDER[0].level, DEFAULT_LADDER[0].duration_s)
    assert dev.calls[0] == first  # softest first
    assert len(dev.calls) == 4  # t=0, 30, 60, 90
    assert kinds == ["audio", "audio", "vibration", "wake"]
    sent = [d for d in pol.log if d.action == "sent"]
    assert [d.t for d in sent] == [0.0, 30.0, 60.0, 90.0]
    assert all("ladder step" in d.reason for d in sent)
    # alert over for resolve_s: episode over, ladder back to the first step
    _run(pol, [(R, None, 0.0)] * 70, t0=100)
    assert pol.log[-1].action == "episode over"
    _run(pol, [(R, True, 0.9)], t0=200)
    assert dev.calls[-1] == first


def test_no_escalation_while_risk_falls():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=20))
    _run(pol, [(R, True, 0.9 - 0.005 * i) for i in range(100)])
    assert len(dev.calls) == 1
    assert any("risk falling" in d.reason for d in pol.log)


@settings(max_examples=40, deadline=None)
@given(
    stages=st.lists(st.sampled_from([W, N1, N2, N3, R, U]), min_size=1, max_size=300),
    alerts=st.lists(st.booleans(), min_size=300, max_size=300),
    dt=st.floats(0.5, 40.0),
)
def test_never_cues_in_n3_w_or_unscored(stages, alerts, dt):
    sent_in = []

    def send(kind, level, duration_s):
        sent_in.append(current[0])
        return True

    current = [W]
    pol = InterventionPolicy(send, PolicyConfig(cooldown_s=0, min_interval_s=0, max_per_hour=60,
                                                max_per_night=1000))  # fmt: skip
    for i, s in enumerate(stages):
        current[0] = s
        pol.update(i * dt, s, alerts[i] or None, 0.9)
    assert not set(sent_in) & {W, N3, U}
    held = [d for d in pol.log if d.action == "held" and d.stage in (W, N3, U)]
    if any(a and s in (W, N3, U) for s, a in zip(stages, alerts)):
        assert held and "never cue" in held[0].reason


def test_config_cannot_allow_forbidden_stages():
    with pytest.raises(ValueError, match="W, N3 or unscored"):
        PolicyConfig(allowed_stages=(N2, N3))
    with pytest.raises(ValueError, match="first_step"):
        PolicyConfig(first_step=7)
    with pytest.raises(ValueError, match="kind"):
        LadderStep("shock", 0.5, 1.0)
    with pytest.raises(ValueError, match="level"):
        LadderStep("audio", 1.5, 1.0)
    with pytest.raises(TypeError, match="send"):
        InterventionPolicy(None)


@settings(max_examples=30, deadline=None)
@given(dts=st.lists(st.floats(0.1, 120.0), min_size=10, max_size=400))
def test_hard_rate_limits(dts):
    dev = Device()
    cfg = PolicyConfig(cooldown_s=0, min_interval_s=15, max_per_hour=4, max_per_night=7,
                       resolve_s=1.0)  # fmt: skip
    pol = InterventionPolicy(dev, cfg)
    t = 0.0
    for dt in dts:
        t += dt
        pol.update(t, R, True, 0.9)
    times = [d.t for d in pol.log if d.action == "sent"]
    assert len(times) <= 7
    assert all(b - a >= 15 for a, b in zip(times, times[1:]))
    for i, a in enumerate(times):
        assert sum(1 for b in times[i:] if b - a < 3600) <= 4


def test_veto_always_wins():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(require_ack=True))
    pol.update(0, R, True, 0.9)
    assert pol.pending is not None and not dev.calls
    pol.veto(1.0, reason="child is being comforted")
    assert pol.pending is None
    assert pol.acknowledge(2.0) is False  # nothing left to acknowledge
    _run(pol, [(R, True, 0.95)] * 300, t0=3)
    assert not dev.calls
    assert any(d.action == "vetoed" for d in pol.log)
    # a technician callable that approves cannot override a veto either
    pol2 = InterventionPolicy(dev, technician=lambda d: True)
    pol2.veto(0.0)
    _run(pol2, [(R, True, 0.9)] * 100)
    assert not dev.calls
    # veto with an end time lapses by itself
    pol2.veto(100.0, until_s=150.0)
    _run(pol2, [(R, True, 0.9)] * 60, t0=100)
    assert len(dev.calls) == 1
    assert [d.t for d in pol2.log if d.action == "sent"] == [150.0]
    assert any(d.action == "veto lifted" for d in pol2.log)


def test_veto_cancels_retries_and_acknowledge_sends():
    dev = Device(answers=[False, False, False])
    pol = InterventionPolicy(dev, PolicyConfig(max_retries=2, retry_interval_s=2))
    pol.update(0, R, True, 0.9)
    assert len(dev.calls) == 1 and pol.log[-1].action == "retry"
    pol.veto(1.0)
    _run(pol, [(R, True, 0.9)] * 10, t0=2)
    assert len(dev.calls) == 1
    assert any(d.action == "cancelled" and "veto" in d.reason for d in pol.log)
    dev2 = Device()
    pol = InterventionPolicy(dev2, PolicyConfig(require_ack=True, ack_timeout_s=30))
    pol.update(0, R, True, 0.9)
    assert pol.acknowledge(5.0)
    pol.update(6, R, True, 0.9)
    assert dev2.calls == [("audio", DEFAULT_LADDER[0].level, DEFAULT_LADDER[0].duration_s)]
    # a proposal nobody acknowledges expires
    pol = InterventionPolicy(Device(), PolicyConfig(require_ack=True, ack_timeout_s=30))
    _run(pol, [(R, True, 0.9)] * 40)
    assert any(d.action == "cancelled" and "in time" in d.reason for d in pol.log)


@pytest.mark.parametrize(
    "answers",
    [
        [False, False, False, False],
        [HeadsetError("no ACK"), TimeoutError("timeout"), OSError("link down"), True],
    ],
)
def test_retries_are_bounded_then_logged_failed(answers):
    dev = Device(answers=answers)
    pol = InterventionPolicy(dev, PolicyConfig(max_retries=2, retry_interval_s=2, cooldown_s=600))
    _run(pol, [(R, True, 0.9)] * 20)
    assert len(dev.calls) == 3  # first try + 2 retries, never more
    acts = [d.action for d in pol.log if d.kind]
    assert acts == ["retry", "retry", "failed"]
    assert pol.n_failed == 1
    assert [d.attempt for d in pol.log if d.kind] == [1, 2, 3]
    assert "no ACK" in pol.log[1].reason or "not acknowledged" in pol.log[1].reason


def test_retry_success_and_stage_change_cancels():
    dev = Device(answers=[False, True])
    pol = InterventionPolicy(dev)
    _run(pol, [(R, True, 0.9)] * 5)
    assert [d.action for d in pol.log if d.kind] == ["retry", "sent"]
    assert "attempt 2" in [d for d in pol.log if d.kind][-1].reason
    dev = Device(answers=[False])
    pol = InterventionPolicy(dev)
    pol.update(0, R, True, 0.9)
    pol.update(3, N3, True, 0.9)
    assert len(dev.calls) == 1
    assert pol.log[-1].action == "cancelled" and "N3" in pol.log[-1].reason


def test_every_decision_logged_with_reason_and_hook():
    seen = []
    pol = InterventionPolicy(Device(), on_decision=seen.append, config=PolicyConfig(cooldown_s=30))
    _run(pol, [(R, True, 0.9)] * 10 + [(N3, True, 0.9)] * 5)
    assert seen == pol.log
    assert all(isinstance(d, Decision) and d.reason for d in pol.log)
    assert all(d.to_dict()["reason"] for d in pol.log)
    # repeated identical holds are logged once, not every second
    holds = [d for d in pol.log if d.action == "held"]
    assert len(holds) == 2  # cooldown, then stage N3
    assert DEFAULT_LADDER[0].kind == "audio"
    with pytest.raises(ValueError, match="backwards"):
        pol.update(0.0, R)
    with pytest.raises(ValueError, match="stage"):
        pol.update(100.0, 7)


def test_escalation_waits_for_the_stage_after_the_cue():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=10, min_interval_s=5))
    # the stager's latest epoch ends at the last multiple of 30 s before t
    for t in range(0, 80):
        pol.update(float(t), R, True, 0.9, stage_as_of=30.0 * (t // 30))
    sent = [d.t for d in pol.log if d.action == "sent"]
    # first cue at 0; the epoch 30-60 (after the cue) is staged at 60: escalation then
    assert sent == [0.0, 60.0]
    assert any("epoch after the last cue" in d.reason for d in pol.log)
    # once that epoch is W, nothing is sent
    pol2 = InterventionPolicy(Device(), PolicyConfig(cooldown_s=10))
    pol2.update(0.0, R, True, 0.9, stage_as_of=0.0)
    pol2.update(60.0, W, True, 0.9, stage_as_of=60.0)
    assert [d.action for d in pol2.log if d.kind] == ["sent"]


def _epochs(pol, t0, t1, stage_of, confidence=None, dt=5.0, alert=True, risk=0.9):
    """Updates every dt s from t0 to t1; the stager's latest epoch ends at the last 30-s mark.

    ``stage_of(epoch_end)`` gives the stage scored for the epoch that ended then.
    """
    t = t0
    while t < t1:
        as_of = 30.0 * (t // 30)
        pol.update(t, stage_of(as_of), alert, risk, stage_as_of=as_of, confidence=confidence)
        t += dt


def test_reported_scenario_no_escalation_into_a_waking_sleeper():
    # issue 12: the first cue (t=25, late in an R epoch) woke her; the arousal detector saw the
    # arousal at 31 s; the epoch 30-60 (the arousal in it) was still scored R; W from 60 s on
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=30, min_interval_s=20))
    truth = {0.0: R, 30.0: R, 60.0: R}  # epoch end -> stage scored for the epoch before it

    def scored(as_of):
        return truth.get(as_of, W)

    _epochs(pol, 25.0, 35.0, scored)
    assert [d.t for d in pol.log if d.action == "sent"] == [25.0]
    pol.wake_sign(31.0, "arousal")
    _epochs(pol, 35.0, 200.0, scored)
    assert [d.t for d in pol.log if d.action == "sent"] == [25.0]  # before: also 60 s, into W
    stops = [d for d in pol.log if d.action == "wake sign"]
    assert stops and "arousal at t=31 s" in stops[0].reason
    assert any(d.action == "held" and "arousal at t=31" in d.reason for d in pol.log)


def test_wake_sign_lock_lifts_on_sleep_scored_after_it_and_the_hold():
    dev = Device()
    cfg = PolicyConfig(cooldown_s=0, min_interval_s=0, wake_hold_s=60)
    pol = InterventionPolicy(dev, cfg)
    _epochs(pol, 0.0, 5.0, lambda a: R)
    assert len(dev.calls) == 1
    pol.wake_sign(10.0, "chin EMG burst")
    # the epoch 0-30 holds the sign (R is not enough), 30-60 is W, 60-90 N1 (not enough),
    # 90-120 N2: the first epoch after the sign that is sleep again, scored at 120 s
    stages = {30.0: R, 60.0: W, 90.0: N1}
    _epochs(pol, 5.0, 200.0, lambda a: stages.get(a, N2))
    sent = [d.t for d in pol.log if d.action == "sent"]
    assert sent[:2] == [0.0, 120.0]
    resumed = [d for d in pol.log if d.action == "resumed"]
    assert resumed[0].t == 120.0 and "N2" in resumed[0].reason
    # the hold: a sleep epoch scored after the sign does not lift the lock before wake_hold_s
    pol = InterventionPolicy(Device(), PolicyConfig(cooldown_s=0, min_interval_s=0,
                                                    wake_hold_s=100))  # fmt: skip
    pol.update(0.0, R, True, 0.9, stage_as_of=0.0)
    pol.wake_sign(1.0, "movement")
    _epochs(pol, 1.0, 200.0, lambda a: R)
    assert [d.t for d in pol.log if d.action == "sent"][:2] == [0.0, 101.0]


def test_wake_sign_without_stage_time_waits_two_epochs():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=0, min_interval_s=0, wake_hold_s=0))
    pol.update(0.0, R, True, 0.9)
    pol.wake_sign(2.0, "movement")
    _run(pol, [(R, True, 0.9)] * 80, dt=1.0, t0=1.0)
    assert [d.t for d in pol.log if d.action == "sent"][:2] == [0.0, 62.0]


def test_wake_sign_cancels_pending_proposal_and_retries():
    pol = InterventionPolicy(Device(), PolicyConfig(require_ack=True))
    pol.update(0.0, R, True, 0.9)
    assert pol.pending is not None
    out = pol.wake_sign(3.0, "movement")
    assert pol.pending is None
    assert out[0].action == "cancelled" and "movement at t=3 s" in out[0].reason
    assert out[0].kind == DEFAULT_LADDER[0].kind
    assert pol.acknowledge(4.0) is False
    dev = Device(answers=[False, True])
    pol = InterventionPolicy(dev, PolicyConfig(max_retries=2, retry_interval_s=2))
    pol.update(0.0, R, True, 0.9)
    assert pol.log[-1].action == "retry"
    pol.wake_sign(1.0, "EEG shift")
    _run(pol, [(R, True, 0.9)] * 10, t0=2.0)
    assert len(dev.calls) == 1  # the retry is not sent
    assert any(d.action == "cancelled" and "EEG shift" in d.reason for d in pol.log)
    # outside an episode a sign is remembered, not logged
    pol = InterventionPolicy(Device())
    assert pol.wake_sign(5.0, "arousal") == []
    with pytest.raises(ValueError, match="t_sign"):
        pol.wake_sign(float("nan"), "arousal")


def test_low_stage_confidence_holds():
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(min_confidence=0.6))
    pol.update(0.0, R, True, 0.9, confidence=0.45)
    assert not dev.calls
    assert pol.log[-1].action == "held" and "low stage confidence" in pol.log[-1].reason
    assert "0.45" in pol.log[-1].reason
    pol.update(5.0, R, True, 0.9, confidence=0.8)
    assert len(dev.calls) == 1
    # a retry on a stage that became unsure is cancelled
    dev = Device(answers=[False, True])
    pol = InterventionPolicy(dev)
    pol.update(0.0, R, True, 0.9, confidence=0.9)
    pol.update(3.0, R, True, 0.9, confidence=0.3)
    assert len(dev.calls) == 1
    assert pol.log[-1].action == "cancelled" and "confidence" in pol.log[-1].reason
    # no confidence given: not checked; 0 turns the check off
    pol = InterventionPolicy(Device(), PolicyConfig(min_confidence=0.0))
    pol.update(0.0, R, True, 0.9, confidence=0.1)
    assert pol.n_sent == 1
    with pytest.raises(ValueError, match="confidence"):
        pol.update(1.0, R, True, 0.9, confidence=1.5)


def test_safety_settings_are_checked():
    with pytest.raises(ValueError, match="min_confidence"):
        PolicyConfig(min_confidence=1.0)
    with pytest.raises(ValueError, match="min_confidence"):
        PolicyConfig(min_confidence=-0.1)
    with pytest.raises(ValueError, match="wake_hold_s"):
        PolicyConfig(wake_hold_s=-1.0)
    with pytest.raises(ValueError, match="sleep_again_stages"):
        PolicyConfig(sleep_again_stages=(W, N2))
    with pytest.raises(ValueError, match="sleep_again_stages"):
        PolicyConfig(sleep_again_stages=())


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.floats(1.0, 20.0), st.sampled_from([W, N1, N2, R]), st.booleans()),
        min_size=5,
        max_size=200,
    )
)
def test_never_cues_soon_after_a_wake_sign_nor_before_sleep_scored_after_it(events):
    cfg = PolicyConfig(cooldown_s=0, min_interval_s=0, max_per_hour=1000, max_per_night=1000)
    pol = InterventionPolicy(Device(), cfg)
    t, signs, scored = 0.0, [], []  # scored: (epoch end, stage) as the stager gave them
    for dt, stage, sign in events:
        t += dt
        as_of = 30.0 * (t // 30)
        if sign:
            pol.wake_sign(t - 0.5, "arousal")
            signs.append(t - 0.5)
        scored.append((as_of, stage))
        pol.update(t, stage, True, 0.9, stage_as_of=as_of)
    sent = [d.t for d in pol.log if d.action == "sent"]
    for c in sent:
        for s in (s for s in signs if s <= c):
            after_cue = any(c0 <= s for c0 in sent if c0 < c)  # one episode: alert all along
            if after_cue:  # strict: the hold, then a whole epoch after the sign is sleep
                assert c - s >= cfg.wake_hold_s
                need = 30.0
            else:  # before any cue: half an epoch after the sign is sleep
                need = 15.0
            assert any(a - s >= need and st_ in cfg.sleep_again_stages
                       for a, st_ in scored if a <= c), (c, s)  # fmt: skip


def test_sign_before_any_cue_waits_for_half_an_epoch_of_sleep_after_it():
    # the awakening that ends a REM period looks like a nightmare starting: the stager's last
    # epoch still says R; a sign at 47 s, the epoch 30-60 holds only 13 s after it
    dev = Device()
    pol = InterventionPolicy(dev, PolicyConfig(cooldown_s=0, min_interval_s=0))
    pol.update(45.0, R, None, 0.0, stage_as_of=30.0)
    assert pol.wake_sign(47.0, "EEG shift") == []  # no episode yet: nothing to log
    stages = {60.0: W, 90.0: W}  # she is awake
    _epochs(pol, 50.0, 130.0, lambda a: stages.get(a, R))
    sent = [d.t for d in pol.log if d.action == "sent"]
    assert sent == [120.0]  # epoch 90-120 is sleep again
    held = [d for d in pol.log if d.action == "held"]
    assert "EEG shift at t=47 s" in held[0].reason and "15 s after it" in held[0].reason
    # a passing arousal early in an epoch costs only that epoch
    pol = InterventionPolicy(Device(), PolicyConfig(cooldown_s=0, min_interval_s=0))
    pol.update(30.0, R, None, 0.0, stage_as_of=30.0)
    pol.wake_sign(33.0, "arousal")
    _epochs(pol, 35.0, 80.0, lambda a: R)
    assert [d.t for d in pol.log if d.action == "sent"][:1] == [60.0]
