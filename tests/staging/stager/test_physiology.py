"""The physiological wake rule (staging/stager/physiology.py) and its place in the model."""

from __future__ import annotations

import numpy as np
import pytest
from _staging_sim import simulated
from hypothesis import given, settings
from hypothesis import strategies as st

from headset.stages import N1, R, W
from staging.stager.features import INPUT_NAMES, N_INPUTS, continuous_features, modality_of
from staging.stager.model import CONTEXT, resolve_model
from staging.stager.offline import stage_epochs
from staging.stager.physiology import (
    ATONIA_SD,
    WAKE_RULE_SD,
    WAKE_RULE_WEIGHT,
    wake_rule_weight,
    with_wake_rule,
)

HI, HAS_HI = INPUT_NAMES.index("z_log_hi"), INPUT_NAMES.index("has_hi")


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
