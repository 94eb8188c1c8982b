"""The physiological wake rule (staging/stager/physiology.py) and its place in the model."""

from __future__ import annotations

import numpy as np
import pytest
from _staging_sim import simulated
from hypothesis import given, settings
from hypothesis import strategies as st

from headset.stages import N1, N2, N3, R, W
from staging.stager.features import (
    COLUMN_NAMES,
    INPUT_NAMES,
    N_COLUMNS,
    N_INPUTS,
    continuous_features,
    modality_of,
    normalize_online,
)
from staging.stager.model import CONTEXT, resolve_model
from staging.stager.offline import stage_epochs
from staging.stager.physiology import (
    ATONIA_SD,
    FLAT_FULL,
    FLAT_ZERO,
    FLOOR_FULL,
    FLOOR_QUANTILE,
    FLOOR_ZERO,
    WAKE_RULE_SD,
    WAKE_RULE_WEIGHT,
    HighBandFloor,
    flat_spectrum_evidence,
    high_band_floor,
    wake_rule_weight,
    with_wake_rule,
)

HI, HAS_HI = INPUT_NAMES.index("z_log_hi"), INPUT_NAMES.index("has_hi")
LOG_HI, LOG_BETA = COLUMN_NAMES.index("log_hi"), COLUMN_NAMES.index("log_beta")


def _inputs(hi, has_hi=1.0):
    x = np.zeros((len(hi), N_INPUTS))
    x[:, HI] = hi
    x[:, HAS_HI] = has_hi
    return x


def test_rule_weight_follows_the_high_frequency_power():
    w = wake_rule_weight(_inputs([-5.0, 0.0, WAKE_RULE_SD, 4.0, 5.0]))
    assert w[0] < 1e-4 and w[1] < 0.02  # at or below the sleep period: nothing changes
    assert w[2] == pytest.approx(WAKE_RULE_WEIGHT / 2)
    assert w[3] > 0.95 * WAKE_RULE_WEIGHT and w[4] <= WAKE_RULE_WEIGHT
    assert np.all(np.diff(w) > 0)
    # no 30-45 Hz band (sampled below 96 Hz): no rule
    assert np.all(wake_rule_weight(_inputs([5.0, 5.0], has_hi=0.0)) == 0.0)


def test_chin_atonia_vetoes_the_rule():
    x = _inputs([4.0, 4.0, 4.0])
    tone = [INPUT_NAMES.index("z_log_emg_lo"), INPUT_NAMES.index("z_log_emg_hi")]
    x[:, INPUT_NAMES.index("has_emg")] = [1.0, 1.0, 0.0]
    x[0, tone] = 0.0  # waking tone: the rule stands
    x[1, tone] = ATONIA_SD - 2.0  # REM atonia: vetoed
    x[2, tone] = ATONIA_SD - 2.0  # no chin EMG recorded: the tone columns mean nothing
    w = wake_rule_weight(x)
    assert w[0] > 0.85 * WAKE_RULE_WEIGHT and w[2] > 0.95 * WAKE_RULE_WEIGHT
    assert w[1] < 0.02 * WAKE_RULE_WEIGHT


def test_rule_weight_bad_shape():
    with pytest.raises(ValueError, match=r"inputs must have shape \(n_epochs, "):
        wake_rule_weight(np.zeros((3, N_INPUTS - 1)))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(1e-6, 1.0), min_size=5, max_size=5),
    st.floats(0.0, WAKE_RULE_WEIGHT),
)
def test_mixture_is_a_distribution_that_only_raises_wake(raw, w):
    lik = np.array(raw)[None] / np.sum(raw)
    out = with_wake_rule(lik, np.array([w]))
    assert out.sum() == pytest.approx(1.0)
    assert out[0, 0] >= lik[0, 0] - 1e-12
    assert np.all(out[0, 1:] <= lik[0, 1:] + 1e-12)
    # the network keeps its share: ratios between sleep stages are unchanged
    assert np.allclose(out[0, 1:] * lik[0, 1], lik[0, 1:] * out[0, 1])


def test_model_likelihoods_apply_the_rule_to_the_current_epoch():
    m = resolve_model("simulated-only")
    for mode, offsets in CONTEXT.items():
        k = offsets.index(0)
        x = np.zeros((2, N_INPUTS * len(offsets)))
        x[:, k * N_INPUTS + HAS_HI] = 1.0
        x[1, k * N_INPUTS + HI] = 5.0  # the current epoch far above the sleep period
        lik = m.likelihoods(x, mode, "eeg")
        assert lik[1, 0] >= WAKE_RULE_WEIGHT * 0.99
        assert np.allclose(lik.sum(1), 1.0)


def test_scalp_muscle_in_sleep_epochs_reads_as_wake():
    """Known answer: a sleeping night with a waking person's muscle activity laid on its EEG.

    Broadband 30-45 Hz activity of 15 µV RMS (frontalis/temporalis tone of someone awake) is
    added to the last ten REM epochs of the first cycle (followed by N1, as after a waking
    stretch), five minutes of a sleeper woken from REM; the stager calls most of them W and
    leaves the untouched epochs as they were. (The HMM of the simulated hypnograms has no W->N2
    transition, so a waking stretch in the middle of N2 would need an N1 epoch to end.)
    """
    data, sf, names, _types, truth = simulated()
    eeg = data[names.index("EEG C4-M1")].copy()
    rng = np.random.default_rng(7)
    n = int(30 * sf)
    touched = np.flatnonzero(truth == R)[6:16]
    assert np.all(np.diff(touched) == 1) and truth[touched[-1] + 1] == N1
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [30.0, 45.0], btype="bandpass", fs=sf, output="sos")
    for e in touched:
        burst = sosfiltfilt(sos, rng.standard_normal(n))
        eeg[e * n : (e + 1) * n] += 15.0 * burst / burst.std()
    eog = data[[names.index("EOG E1-M2"), names.index("EOG E2-M2")]]
    f = continuous_features(eeg, sf, eog=eog)
    assert modality_of(f.indicators) == "eeg+eog"
    clean = continuous_features(data[names.index("EEG C4-M1")], sf, eog=eog)
    for mode in ("offline", "online"):
        st_ = stage_epochs(f, "simulated-only", mode).stages
        assert np.mean(st_[touched] == W) >= 0.8, (mode, st_[touched])
        other = np.setdiff1d(np.arange(truth.size), touched)
        ref = stage_epochs(clean, "simulated-only", mode).stages
        assert np.mean(st_[other] == ref[other]) >= 0.9


# ---- the flat-spectrum trigger ---------------------------------------------------------------


def _values(hi_minus_beta, log_hi):
    v = np.full((len(log_hi), N_COLUMNS), np.nan)
    v[:, LOG_HI] = log_hi
    v[:, LOG_BETA] = np.asarray(log_hi) - np.asarray(hi_minus_beta)
    return v


def test_flat_evidence_ramps_on_slope_and_floor():
    far = np.zeros(5)  # floor far below the epochs: only the slope counts
    e = flat_spectrum_evidence(_values([-1.0, FLAT_ZERO, -0.1, FLAT_FULL, 0.1], far + 3.0), far)
    assert e[0] == 0.0 and e[4] == 1.0
    assert e[1] == pytest.approx(0.0, abs=1e-12) and e[3] == pytest.approx(1.0)
    assert e[2] == pytest.approx((-0.1 - FLAT_ZERO) / (FLAT_FULL - FLAT_ZERO))
    # flat, but at the recording's floor (a stationary noise): no evidence
    floor = np.zeros(4)
    e = flat_spectrum_evidence(_values([0.0] * 4, [0.0, FLOOR_ZERO, 0.1, FLOOR_FULL]), floor)
    assert e[0] == 0.0 and e[1] == pytest.approx(0.0, abs=1e-12) and e[3] == pytest.approx(1.0)
    assert e[2] == pytest.approx((0.1 - FLOOR_ZERO) / (FLOOR_FULL - FLOOR_ZERO))
    # missing band (sampled below 96 Hz) or no floor yet: none
    v = _values([0.0, 0.0], [1.0, 1.0])
    v[0, LOG_HI] = np.nan
    assert np.all(flat_spectrum_evidence(v, np.array([0.0, np.nan])) == 0.0)


def test_flat_evidence_bad_shapes():
    with pytest.raises(ValueError, match=r"values must have shape \(n_epochs, "):
        flat_spectrum_evidence(np.zeros((3, N_COLUMNS - 1)), np.zeros(3))
    with pytest.raises(ValueError, match=r"floor must have shape \(3,\), got \(2,\)"):
        flat_spectrum_evidence(np.zeros((3, N_COLUMNS)), np.zeros(2))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=300), st.integers(0, 2**32 - 1))
def test_floor_is_the_causal_quantile_of_the_valid_epochs(hi, seed):
    hi = np.array(hi)
    valid = np.random.default_rng(seed).random(hi.size) > 0.2
    v = _values(np.zeros(hi.size), hi)
    online = HighBandFloor()
    pieces = np.array_split(np.arange(hi.size), 3)
    got = np.concatenate([online.push(v[p], valid[p]) for p in pieces])  # any chunking
    assert np.array_equal(got, high_band_floor(v, valid, causal=True), equal_nan=True)
    for k in range(hi.size):
        past = np.sort(hi[: k + 1][valid[: k + 1]])
        want = past[round(FLOOR_QUANTILE * (past.size - 1))] if past.size else np.nan
        assert got[k] == want or (np.isnan(want) and np.isnan(got[k]))
    whole = high_band_floor(v, valid, causal=False)
    assert np.array_equal(whole, np.full(hi.size, got[-1]), equal_nan=True)


def _power_law(chi, sfreq, n_epochs, rng):
    """Gaussian noise with a 1 / f ** chi power spectrum, in µV."""
    n = int(n_epochs * 30 * sfreq)
    f = np.fft.rfftfreq(n, 1 / sfreq)
    amp = np.zeros_like(f)
    amp[1:] = f[1:] ** (-chi / 2)
    spec = amp * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    x = np.fft.irfft(spec, n)
    return 20.0 * x / x.std()


@pytest.mark.parametrize(("chi", "want"), [(0.0, 0.03), (0.5, -0.079), (1.0, -0.19), (2.0, -0.42)])
def test_slope_cue_of_power_law_spectra(chi, want):
    """The documented values: log10 P(30-45) / P(16-30) of a 1 / f ** chi spectrum."""
    x = _power_law(chi, 256.0, 20, np.random.default_rng(0))
    f = continuous_features(x, 256.0)
    cue = f.values[:, LOG_HI] - f.values[:, LOG_BETA]
    assert np.median(cue) == pytest.approx(want, abs=0.015), cue


def test_flat_evidence_is_gain_invariant():
    rng = np.random.default_rng(5)
    x = _power_law(2.0, 128.0, 20, rng)
    muscle = np.repeat(rng.uniform(0.0, 4.0, 20), int(30 * 128.0)) * _power_law(0.0, 128.0, 20, rng)
    x = x + muscle
    ev = []
    for gain in (0.3, 1.0, 3.0):
        f = continuous_features(gain * x, 128.0)
        ev.append(flat_spectrum_evidence(f.values, high_band_floor(f.values, f.valid, True)))
    assert ev[1].max() == 1.0 and ev[1].min() == 0.0  # the cue is on in some epochs only
    assert np.allclose(ev[0], ev[1], atol=1e-9) and np.allclose(ev[2], ev[1], atol=1e-9)


def test_wake_rule_takes_the_larger_trigger():
    x = _inputs([-5.0, -5.0, 5.0])
    flat = np.array([0.0, 1.0, 0.0])
    w = wake_rule_weight(x, flat)
    assert np.array_equal(w[[0, 2]], wake_rule_weight(x)[[0, 2]])  # no flat evidence: as before
    assert w[1] == pytest.approx(WAKE_RULE_WEIGHT)
    x[:, HAS_HI] = 0.0  # no 30-45 Hz band: no rule at all
    assert np.all(wake_rule_weight(x, flat) == 0.0)


def _muscle(rng, n_epochs, sf):
    """Scalp muscle of a waking person: broadband (white above 16 Hz), its level changing from
    one 30-s epoch to the next (talking, chewing, frowning: 3-20 µV RMS, log-uniform)."""
    from scipy.signal import butter, sosfiltfilt

    n = int(30 * sf)
    sos = butter(4, 16.0, btype="highpass", fs=sf, output="sos")
    m = sosfiltfilt(sos, rng.standard_normal(n_epochs * n))
    level = np.repeat(10.0 ** rng.uniform(0.5, 1.3, n_epochs), n)
    return level * m / m.std()


def test_wake_with_an_awake_past_is_found_without_a_sleep_period():
    """Known answer: an awake person whose EEG looks like sleep (frontal lead: eye movements)
    from the recording start, with scalp muscle on it, then the night.

    Epochs 14-49 of the forced night (N2 and N3) get a waking person's muscle (3-20 µV RMS
    above 16 Hz, changing every epoch) and become wake; their whole past is awake, so the
    30-45 Hz power is not "far above" anything the stager has seen. The flat spectrum finds
    them (online, no look-ahead); epochs untouched keep their stages.
    """
    data, sf, names, _types, truth = simulated()
    eeg = data[names.index("EEG C4-M1")].copy()
    n = int(30 * sf)
    touched = np.arange(14, 50)
    assert set(truth[touched]) == {N2, N3}
    eeg[touched[0] * n : (touched[-1] + 1) * n] += _muscle(
        np.random.default_rng(3), touched.size, sf
    )
    eog = data[[names.index("EOG E1-M2"), names.index("EOG E2-M2")]]
    f = continuous_features(eeg, sf, eog=eog)
    clean = continuous_features(data[names.index("EEG C4-M1")], sf, eog=eog)
    st_ = stage_epochs(f, "simulated-only", "online").stages
    assert np.mean(st_[touched[2:]] == W) >= 0.8, st_[touched]
    ref = stage_epochs(clean, "simulated-only", "online").stages
    assert np.mean(ref[touched] == W) <= 0.1  # the clean epochs: sleep
    later = np.arange(touched[-1] + 4, truth.size)
    assert np.mean(st_[later] == ref[later]) >= 0.9


def test_a_stationary_noise_floor_is_not_wake():
    """Known answer: white amplifier noise flattening the spectrum above 16 Hz all night long
    (a dry electrode, a low-gain bipolar lead: 8 µV RMS here, as 2.4 µV on the training's
    lowest gain of 0.3) is at the recording's floor: (almost) no evidence, and the online
    stages of the sleep epochs stay those of the rule without the flat-spectrum trigger."""
    data, sf, names, _types, truth = simulated()
    eeg = data[names.index("EEG C4-M1")]
    rng = np.random.default_rng(11)
    noisy = eeg + 8.0 * rng.standard_normal(eeg.size)
    f = continuous_features(noisy, sf)
    cue = f.values[:, LOG_HI] - f.values[:, LOG_BETA]
    sleep = (truth == N2) | (truth == N3) | (truth == R)
    assert np.median(cue[sleep]) > FLAT_FULL  # the noise does flatten the spectrum
    ev = flat_spectrum_evidence(f.values, high_band_floor(f.values, f.valid, True))
    assert np.mean(ev[sleep] > 0.5) <= 0.05
    m = resolve_model("simulated-only")
    without = m.predict(normalize_online(f, m.prior), f.valid, "online", modality_of(f.indicators))
    st_ = stage_epochs(f, m, "online").stages
    assert np.mean(st_[sleep] == np.argmax(without, 1)[sleep]) >= 0.95
