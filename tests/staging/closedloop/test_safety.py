"""Safety of the closed loop (issue 12): no cue reaches a sleeper who is waking, awake or in N3.

The ground truth is the simulator's (``Sleeper.stage_at`` on both sides of the sample a cue is
delivered at), never the stager's last epoch. The nights are run by the closed-loop benchmark
(``benchmarks/closed_loop.py``: online stager -> nightmare detector -> policy -> the simulated
sleeper's response to each cue), on short nights cut around each seed's first nightmare
(``late_rem_night``), with the policy run as the monitor runs it (each cue proposed, then sent
when the 10-s grace period passes without a veto).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from _constants import REPO
from _events_synth import sleep_chunk, split

from headset.chunk import Chunk
from staging.closedloop.arousal import ArousalDetector

GRACE_S = 10.0  # the monitor's default grace period


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "closed_loop", REPO / "benchmarks" / "closed_loop.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CL = _benchmark()


# ---- the wake signs ----------------------------------------------------------------------------
def _with_accelerometer(chunk, moves=(), seed=0):
    """Add ACC X/Y/Z (milli-g: gravity, breathing, noise; 150 mg jerks during ``moves``)."""
    n, fs = chunk.n_samples, chunk.sfreq
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    acc = np.zeros((3, n)) + np.array([[30.0], [-20.0], [995.0]])
    acc[2] += 4.0 * np.sin(2 * np.pi * 0.25 * t)
    acc += rng.standard_normal((3, n))
    for on, dur in moves:
        m = (t >= on) & (t < on + dur)
        acc[:, m] += 150.0 * rng.standard_normal((3, int(m.sum())))
    data = np.vstack([chunk.data, acc])
    return Chunk(data, 0, fs, chunk.ch_names + ("ACC X", "ACC Y", "ACC Z"),
                 chunk.ch_types + ("misc",) * 3, np.zeros(data.shape, np.uint8))  # fmt: skip


def _signs(chunk, pieces=None):
    det = ArousalDetector(chunk.sfreq, chunk.ch_names, chunk.ch_types)
    signs = []
    for c in pieces or [chunk]:
        det.push(c)  # no stage given: signs do not wait for one
        signs += det.take_signs()
    return det, signs


def test_wake_signs_come_without_a_stage_and_whatever_the_chunking():
    base = sleep_chunk(
        150,
        seed=3,
        eeg_events=[(40.0, 5.0, 10.0, 40.0), (130.0, 1.5, 10.0, 40.0)],  # a shift; too short
        emg_events=[(80.0, 3.0, 6.0), (110.0, 0.5, 6.0)],  # a burst; a twitch
    )
    ch = _with_accelerometer(base, moves=[(60.0, 3.0)])
    det, signs = _signs(ch)
    got = [(s.source, round(s.t)) for s in signs]
    assert {src for src, _ in got} == {"EEG shift", "chin EMG burst", "movement"}, got
    by = {src: [t for s2, t in got if s2 == src] for src in ("EEG shift", "chin EMG burst")}
    assert by["EEG shift"] == pytest.approx([40], abs=2)
    assert by["chin EMG burst"] == pytest.approx([80], abs=1)
    assert [t for src, t in got if src == "movement"] == pytest.approx([60], abs=1)
    assert det.events == []  # no stage yet: no AASM arousal released, the signs came anyway
    _, again = _signs(ch, split(ch, sizes_seed=4, max_len=700))
    assert again == signs
    assert det.take_signs() == []  # each sign is returned once
    # without an accelerometer, said so
    det2 = ArousalDetector(base.sfreq, base.ch_names, base.ch_types)
    assert any("accelerometer" in m for m in det2.missing)


# ---- the closed loop on seeded nightmare-prone nights ---------------------------------------
def _night(seed, offset_s=0.0):
    night = CL.late_rem_night(seed)
    assert night is not None, seed
    return CL.run_night(seed, "dreamnet", night=night, grace_s=GRACE_S, offset_s=offset_s)


def _wrong(result):
    return [c for c in result["cues"] if CL.wrong_stage(c)]


#: Seeds of the many-night check (16 cut nights, about 65 s on one idle core) and how long
#: after the headset each session starts: the stager's epochs meet the sleeper's changes of
#: state at many offsets (a person's awakening does not wait for the stager's epoch grid).
_SEEDS = (7000, 7001, *range(7003, 7017))  # 7002 plans no nightmare after a REM period
OFFSETS_S = dict(zip(_SEEDS, (0, 5, 10, 15, 20, 25, 2, 7, 12, 4, 17, 22, 27, 9, 14, 29)))

#: Measured on these nights. On the previous sleeper (sleeper-4, seeds 7000-7015) the policy of
#: commit 3d558a4 (no wake signs, no confidence gate) detected and cued 16 of 16 nightmares and
#: resolved 15, with one cue in true W (seed 7009); the wake signs and the gate kept 16, 16 and
#: 15 with none in W or N3. On sleeper-5 (more fragmented REM, wake movements) the same policy
#: detects and cues 15 of 16 and resolves 14, with no cue in W or N3.
BEFORE = {"detected": 15, "cued": 15, "resolved": 14}


@pytest.fixture(scope="module")
def many_nights():
    return {seed: _night(seed, offset_s=float(off)) for seed, off in OFFSETS_S.items()}


@pytest.mark.slow
def test_reported_kind_of_night_no_cue_into_a_waking_sleeper(many_nights):
    """Seed 7009, the session started 4 s after the headset, cues through the grace period.

    The REM period before the nightmare ends in an awakening (true W from 746 s on, session
    time); the nightmare detector takes the rise of heart rate and chin tone for a nightmare
    starting while the stager's last epoch still says R. Before: the audio cue went out at
    775 s into true W (simulator: ``Cue: audio -> already awake``). Now the awakening's wake
    signs (chin-EMG burst and EEG shift at 747 s) hold it until W is scored.
    """
    r = many_nights[7009]
    assert _wrong(r) == [], r["cues"]
    assert not [c for c in r["cues"] if c["t"] < 1000.0]
    ((on, end),) = r["episodes"]
    assert any(on <= c["t"] <= end for c in r["cues"])  # the nightmare itself is still cued


@pytest.mark.slow
def test_many_seeded_nights_no_cue_in_w_or_n3_by_the_truth(many_nights):
    wrong = [(seed, c) for seed, r in many_nights.items() for c in _wrong(r)]
    assert wrong == []
    assert sum(len(r["cues"]) for r in many_nights.values()) > 0  # the check is not vacuous


@pytest.mark.slow
def test_many_seeded_nights_nightmares_still_detected_cued_and_resolved(many_nights):
    nights = list(many_nights.values())
    det = CL.detection(nights)
    out = CL.outcomes(nights)
    cued = sum(
        any(on <= c["t"] <= end for c in r["cues"]) for r in nights for on, end in r["episodes"]
    )
    assert det["episodes"] == len(nights)  # one nightmare per cut night
    assert det["detected_before_awakening"] >= BEFORE["detected"]
    assert cued >= BEFORE["cued"]
    assert out["nightmares"] - out["nightmare_awakenings"] >= BEFORE["resolved"]


def test_monitor_pipeline_gives_the_policy_its_wake_signs_and_the_stage_confidence():
    from staging.monitor.pipeline import Pipeline

    ch = _with_accelerometer(
        sleep_chunk(90, seed=5, eeg_events=[(40.0, 5.0, 10.0, 40.0)]), moves=[(70.0, 3.0)]
    )
    pipe = Pipeline(ch.info, send=lambda *cue: (True, "", 1))
    seen, updates = [], []
    policy = pipe.policy.policy
    real_sign, real_update = policy.wake_sign, policy.update

    def sign(t, source):
        seen.append((round(t), source))
        return real_sign(t, source)

    def update(*args, **kwargs):
        updates.append(kwargs)
        return real_update(*args, **kwargs)

    policy.wake_sign, policy.update = sign, update
    for piece in split(ch, sizes_seed=1, max_len=1300):
        pipe.process(piece)
    sources = {src for _, src in seen}
    assert {"EEG shift", "movement"} <= sources, seen
    assert any(k.get("confidence") is not None for k in updates)  # once an epoch is scored
    assert all(k.get("confidence") is None or 0 <= k["confidence"] <= 1 for k in updates)
