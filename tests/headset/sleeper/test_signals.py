"""Stage signatures of the simulated sleeper's signals (DESIGN section 4), measured."""

import numpy as np
import pytest
from _constants import FS
from scipy import signal

from headset.sleeper import DEFAULT_MONTAGE, Sleeper

EP = int(30 * FS)
F4, C4, O2, E1, E2, EMG, ECG = range(7)
STAGES = ("W", "N1", "N2", "N3", "R")


def night(stages, seed=1, profile="healthy", **kw):
    s = Sleeper(profile=profile, seed=seed, hypnogram=list(stages), **kw)
    c = s.read(s.n_samples)
    return s, c.data


@pytest.fixture(scope="module")
def per_stage():
    """Six epochs of each stage for two subjects (first epoch dropped)."""
    out = {}
    for seed in (1, 2):
        for st in STAGES:
            out[seed, st] = night([st] * 6, seed=seed)[1][:, EP:]
    return out


def rel_power(x, lo, hi):
    f, p = signal.welch(x, FS, nperseg=int(4 * FS))
    tot = p[(f >= 0.5) & (f <= 30)].sum()
    return p[(f >= lo) & (f < hi)].sum() / tot


@pytest.mark.parametrize("seed", [1, 2])
def test_band_power_order(per_stage, seed):
    delta = {st: rel_power(per_stage[seed, st][C4], 0.5, 4) for st in STAGES}
    alpha = {st: rel_power(per_stage[seed, st][C4], 8, 12) for st in STAGES}
    # wake is not the lowest: a waking person's eye and body movements reach the EEG (the real
    # Sleep-EDF night has more 0.5-2 Hz power in W than in R at Fpz-Cz)
    assert delta["N3"] > delta["N2"] > max(delta["N1"], delta["R"])
    assert alpha["W"] == max(alpha.values())
    assert rel_power(per_stage[seed, "W"][O2], 8, 12) > rel_power(per_stage[seed, "W"][F4], 8, 12)


@pytest.mark.parametrize("seed", [1, 2])
def test_aperiodic_steeper_in_deep_sleep(per_stage, seed):
    def slope(x):
        f, p = signal.welch(x, FS, nperseg=int(4 * FS))
        m = (f >= 20) & (f <= 40)  # above the rhythms
        return np.polyfit(np.log10(f[m]), np.log10(p[m]), 1)[0]

    assert slope(per_stage[seed, "N3"][C4]) < slope(per_stage[seed, "W"][C4])


def count_bursts(x, lo, hi, k=2.5, min_s=0.4, max_s=3.0):
    sos = signal.butter(4, [lo, hi], "bandpass", fs=FS, output="sos")
    env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, x)))
    env = signal.sosfiltfilt(signal.butter(2, 3, fs=FS, output="sos"), env)
    above = env > k * np.median(env)
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    on, off = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    dur = (off - on) / FS
    return int(np.sum((dur >= min_s) & (dur <= max_s)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spindle_density_in_n2(seed):
    s, x = night(["N2"] * 11, seed=seed)
    minutes = (x.shape[1] - EP) / FS / 60
    n2 = count_bursts(x[C4, EP:], 11, 16) / minutes
    _, xr = night(["R"] * 11, seed=seed)
    rem = count_bursts(xr[C4, EP:], 11, 16) / minutes
    assert 1.5 <= n2 <= 9.0, n2
    assert rem < n2 / 2


def slow_wave_fraction(x):
    """Fraction of time covered by 0.5-2 Hz waves of > 75 µV peak to peak (AASM N3)."""
    sos = signal.butter(2, [0.5, 2.0], "bandpass", fs=FS, output="sos")
    y = signal.sosfiltfilt(sos, x)
    zc = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))  # full waves between upward crossings
    covered = 0
    for a, b in zip(zc[:-1], zc[1:]):
        if 0.5 <= (b - a) / FS <= 2.0 and y[a:b].max() - y[a:b].min() > 75:
            covered += b - a
    return covered / y.size


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_slow_waves_fill_n3(seed):
    _, x = night(["N3"] * 5, seed=seed)
    fracs = [slow_wave_fraction(x[F4, i * EP : (i + 1) * EP]) for i in range(1, 5)]
    assert min(fracs) > 0.2, fracs
    _, x2 = night(["N2"] * 3, seed=seed)
    assert slow_wave_fraction(x2[F4, EP:]) < min(fracs)
    # frontal dominance
    assert slow_wave_fraction(x[F4, EP:]) > slow_wave_fraction(x[O2, EP:])


@pytest.mark.parametrize("seed", [1, 2])
def test_rem_eye_movements_anti_phase(per_stage, seed):
    sos = signal.butter(2, [0.3, 5], "bandpass", fs=FS, output="sos")
    e1 = signal.sosfiltfilt(sos, per_stage[seed, "R"][E1])
    e2 = signal.sosfiltfilt(sos, per_stage[seed, "R"][E2])
    assert np.corrcoef(e1, e2)[0, 1] < -0.3
    # in N3 the EOG channels see frontal slow waves in phase
    n1 = signal.sosfiltfilt(sos, per_stage[seed, "N3"][E1])
    n2 = signal.sosfiltfilt(sos, per_stage[seed, "N3"][E2])
    assert np.corrcoef(n1, n2)[0, 1] > 0.3


@pytest.mark.parametrize("seed", [1, 2])
def test_emg_lowest_in_rem(per_stage, seed):
    sos = signal.butter(4, 15, "highpass", fs=FS, output="sos")
    rms = {
        st: np.sqrt(np.mean(signal.sosfiltfilt(sos, per_stage[seed, st][EMG]) ** 2))
        for st in STAGES
    }
    assert rms["R"] == min(rms.values())
    assert rms["W"] == max(rms.values())


def heart_rate(beats, a, b):
    sel = beats[(beats >= a) & (beats < b)]
    return 60 * FS / np.mean(np.diff(sel))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_heart_rate_rises_in_nightmare(seed):
    s = Sleeper(seed=seed, hypnogram=["R"] * 10 + ["W"] * 2, nightmares=[(120.0, 180.0)])
    c = s.read(s.n_samples)
    beats = s.beat_samples
    calm = heart_rate(beats, 0, int(110 * FS))
    peak = heart_rate(beats, int(250 * FS), int(300 * FS))
    assert peak - calm >= 10, (calm, peak)
    descr = [
        (a.description, a.onset, a.duration) for a in c.annotations if a.description == "Nightmare"
    ]
    assert descr == [("Nightmare", 120.0, 180.0)]
    # nightmare: more EMG twitches, more eye movements, alpha/beta intrusion
    sos = signal.butter(4, 15, "highpass", fs=FS, output="sos")
    emg = signal.sosfiltfilt(sos, c.data[EMG])
    assert np.std(emg[int(240 * FS) : int(300 * FS)]) > 1.5 * np.std(emg[: int(110 * FS)])
    beta = [
        rel_power(c.data[C4, a : a + int(50 * FS)], 15, 30) for a in (int(50 * FS), int(250 * FS))
    ]
    assert beta[1] > beta[0]


def test_heart_rate_by_stage(per_stage):
    hr = {}
    for st in STAGES:
        s = Sleeper(seed=1, hypnogram=[st] * 4)
        s.read(s.n_samples)
        hr[st] = heart_rate(s.beat_samples, EP, s.n_samples)
    assert hr["N3"] == min(hr.values())
    assert 50 <= hr["W"] <= 90


def test_wake_has_blinks_and_n2_none(per_stage):
    sos = signal.butter(2, [0.5, 8], "bandpass", fs=FS, output="sos")
    w = np.abs(signal.sosfiltfilt(sos, per_stage[1, "W"][E2] - per_stage[1, "W"][E1]))
    n2 = np.abs(signal.sosfiltfilt(sos, per_stage[1, "N2"][E2] - per_stage[1, "N2"][E1]))
    assert np.percentile(w, 99.5) > 2 * np.percentile(n2, 99.5)


def test_smooth_stage_transition():
    s, x = night(["N2", "N2", "W", "W", "N3", "N3"], seed=3)
    d = np.abs(np.diff(x[:7], axis=1))
    typical = np.percentile(d, 99.9, axis=1)
    for b in (2 * EP, 4 * EP):
        assert np.all(d[:, b - 3 : b + 3].max(axis=1) <= 1.5 * typical)


def test_accelerometer_gravity():
    s, x = night(["W"] * 4, seed=2)
    acc = x[[DEFAULT_MONTAGE.index(c) for c in ("ACC X", "ACC Y", "ACC Z")]]
    g = np.linalg.norm(acc, axis=0)
    assert 900 < np.median(g) < 1100
    # held: the accelerometer changes value at most every few samples
    changes = np.count_nonzero(np.diff(acc[0]))
    assert changes <= acc.shape[1] / 4


def test_profiles_change_physiology():
    _, healthy = night(["N3"] * 3, seed=4)
    _, child = night(["N3"] * 3, seed=4, profile="child")
    assert np.std(child[F4, EP:]) > 1.2 * np.std(healthy[F4, EP:])
    _, h2 = night(["N2"] * 3, seed=4)
    _, ins = night(["N2"] * 3, seed=4, profile="insomnia")
    assert rel_power(ins[C4, EP:], 15, 30) > rel_power(h2[C4, EP:], 15, 30)
    hr = []
    for prof in ("healthy", "child"):
        s = Sleeper(seed=4, profile=prof, hypnogram=["N2"] * 3)
        s.read(s.n_samples)
        hr.append(heart_rate(s.beat_samples, 0, s.n_samples))
    assert hr[1] > hr[0] + 5
