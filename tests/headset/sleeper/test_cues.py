"""The closed loop: cues change the simulated sleeper's future (DESIGN 4 cue response model)."""

import numpy as np
import pytest
from _constants import FS
from scipy import signal

from headset.sleeper import Sleeper
from headset.stages import N1, N2, R, W

EMG = 5


def nightmare_sleeper(seed):
    # REM with a nightmare from 60 s to 240 s, then the planned awakening
    return Sleeper(
        seed=seed, hypnogram=["R"] * 8 + ["W"] * 4 + ["R"] * 8, nightmares=[(60.0, 180.0)]
    )


def cue_outcomes(t_s, kind, level, seeds):
    out = []
    for seed in seeds:
        s = nightmare_sleeper(seed)
        s.read(int(t_s * FS))
        out.append(s.apply_cue(kind, level))
    return out


def test_soft_early_cue_tends_to_settle():
    outcomes = cue_outcomes(80.0, "audio", 0.25, range(12))
    settled = sum(o in ("settled REM", "settled N2") for o in outcomes)
    assert settled >= 9, outcomes


def test_strong_or_late_cue_tends_to_wake():
    assert cue_outcomes(225.0, "vibration", 1.0, range(8)).count("woke") >= 7
    assert cue_outcomes(225.0, "audio", 0.3, range(12)).count("woke") >= 6  # late


def test_settled_nightmare_calms_and_sleep_goes_on():
    for seed in range(30):
        s = nightmare_sleeper(seed)
        s.read(int(90 * FS))
        outcome = s.apply_cue("audio", 0.2)
        if outcome == "settled REM":
            break
    else:
        pytest.fail("no seed settled")
    c = s.read(s.n_samples)
    h = s.hypnogram
    assert np.all(h[3:9] == R) and not np.any(h[3:12] == W)  # the awakening is gone
    nm = [a for a in s.events if a.description == "Nightmare"]
    assert len(nm) == 1 and nm[0].onset == 60.0 and nm[0].duration < 180.0
    cue = [a for a in s.events if a.description.startswith("Cue:")]
    assert [a.description for a in cue] == ["Cue: audio -> settled REM"]
    assert cue[0].onset == pytest.approx(90.0)
    assert cue[0] in c.annotations
    beats = s.beat_samples
    hr_after = 60 * FS / np.mean(np.diff(beats[(beats > 200 * FS) & (beats < 235 * FS)]))
    hr_before = 60 * FS / np.mean(np.diff(beats[beats < 55 * FS]))
    assert hr_after < hr_before + 6


def test_woken_sleeper_wakes_from_next_epoch():
    s = nightmare_sleeper(1)
    s.read(int(200 * FS))
    gen_before = s.hypnogram[:7].copy()
    assert s.apply_cue("vibration", 1.0) == "woke"
    h = s.hypnogram
    assert np.array_equal(h[:7], gen_before)  # the past does not change
    e_next = 7  # 200 s + the current 10-s block end inside epoch 6 -> next epoch is 7
    assert h[e_next] == W
    s.read(s.n_samples)
    nm = [a for a in s.events if a.description == "Nightmare"]
    assert len(nm) == 1 and nm[0].onset == 60.0 and 140 <= nm[0].duration <= 151
    assert any(a.description == "Awakening" for a in s.events)


def test_cue_in_n3_causes_confusion_arousal():
    s = Sleeper(seed=2, hypnogram=["N3"] * 10)
    s.read(int(61 * FS))
    assert s.apply_cue("audio", 0.5) == "confusion arousal"
    x = s.read(s.n_samples).data
    h = s.hypnogram
    assert h[3] == W and h[4] == N1
    ar = [a for a in s.events if a.description == "Arousal"]
    assert ar and 70 <= ar[0].onset <= 71
    s2 = Sleeper(seed=2, hypnogram=["N3"] * 10)
    s2.read(int(61 * FS))
    y = s2.read(s2.n_samples).data
    assert s2.hypnogram[3] == 3  # without the cue: still N3
    # the chin EMG rises during the arousal (from 70 s, i.e. 9 s into what was read)
    sos = signal.butter(4, 15, "highpass", fs=FS, output="sos")
    a, b = int(10 * FS), int(18 * FS)
    emg_x = np.std(signal.sosfiltfilt(sos, x[EMG])[a:b])
    emg_y = np.std(signal.sosfiltfilt(sos, y[EMG])[a:b])
    assert emg_x > 1.5 * emg_y


def test_cue_changes_only_the_future():
    a = Sleeper(seed=4, hypnogram=["N2"] * 8)
    b = Sleeper(seed=4, hypnogram=["N2"] * 8)
    xa = a.read(int(45 * FS)).data
    xb = b.read(int(45 * FS)).data
    assert np.array_equal(xa, xb)
    out = a.apply_cue("wake", 1.0)
    assert out in ("woke", "arousal")
    ya = a.read(a.n_samples).data
    yb = b.read(b.n_samples).data
    cut = int(50 * FS) - int(45 * FS)  # the block holding the cue was generated already
    assert np.array_equal(ya[:, :cut], yb[:, :cut])
    assert not np.array_equal(ya[:, cut:], yb[:, cut:])
    sos = signal.butter(4, 15, "highpass", fs=FS, output="sos")
    emg_a = signal.sosfiltfilt(sos, ya[EMG, cut : cut + int(4 * FS)])
    emg_b = signal.sosfiltfilt(sos, yb[EMG, cut : cut + int(4 * FS)])
    assert np.std(emg_a) > 1.5 * np.std(emg_b)


def test_cue_when_awake_and_validation():
    s = Sleeper(seed=1, hypnogram=["W"] * 4)
    s.read(1000)
    assert s.apply_cue("audio", 0.5) == "already awake"
    assert s.apply_cue("vibration", 0.0) == "no effect"
    with pytest.raises(ValueError, match="kind"):
        s.apply_cue("shout", 0.5)
    with pytest.raises(ValueError, match="level"):
        s.apply_cue("audio", 1.5)
    with pytest.raises(TypeError):
        s.apply_cue("audio", "loud")
    s.read(s.n_samples)
    assert s.apply_cue("audio", 0.5) == "night over"


def test_cues_are_deterministic():
    def run():
        s = nightmare_sleeper(3)
        outs = []
        for t in (70, 100, 130):
            s.read(int(t * FS) - s.position)
            outs.append(s.apply_cue("audio", 0.3))
        return outs, s.read(s.n_samples).data, s.hypnogram

    a, b = run(), run()
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_light_sleep_cue_response_scales_with_strength():
    weak = strong = 0
    for seed in range(10):
        s = Sleeper(seed=seed, hypnogram=["N2"] * 4)
        s.read(int(40 * FS))
        weak += s.apply_cue("audio", 0.1) != "no effect"
        s = Sleeper(seed=seed, hypnogram=["N2"] * 4)
        s.read(int(40 * FS))
        strong += s.apply_cue("vibration", 1.0) in ("woke", "arousal")
    assert strong > weak and strong >= 8
    assert N2 == 2
