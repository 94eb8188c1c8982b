"""Epoch features and their normalisation (staging/features.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from staging.stager import features as F


def _eeg(sfreq: float, n_epochs: int = 4, seed: int = 0, alpha: float = 20.0) -> np.ndarray:
    """Pink-ish noise plus a 10-Hz rhythm and a 1-Hz wave, in µV."""
    rng = np.random.default_rng(seed)
    n = int(round(n_epochs * 30 * sfreq))
    t = np.arange(n) / sfreq
    w = np.cumsum(rng.standard_normal(n)) * 0.5
    w -= np.convolve(w, np.ones(101) / 101, mode="same")
    return w + alpha * np.sin(2 * np.pi * 10 * t) + 40 * np.sin(2 * np.pi * 1.0 * t)


def test_column_layout():
    assert len(F.COLUMN_NAMES) == F.N_COLUMNS == len(set(F.COLUMN_NAMES))
    assert len(F.INPUT_NAMES) == F.N_INPUTS
    assert F.EPOCH_SAMPLES == 3000


def test_rate_invariance():
    """The same signal at 100, 200 and 256 Hz gives (nearly) the same features."""
    base = _eeg(1000.0)
    vals = {}
    for sf in (100, 200, 256):
        x = resample_poly(base, sf, 1000)
        vals[sf] = F.continuous_features(x, float(sf)).values
    for sf in (200, 256):
        a, b = vals[100], vals[sf]
        ok = np.isfinite(a) & np.isfinite(b)
        assert np.allclose(a[ok], b[ok], rtol=0.05, atol=0.05)


def test_amplitude_invariance_of_inv_columns():
    x = _eeg(256.0)
    a = F.continuous_features(x, 256.0).values
    b = F.continuous_features(2.0 * x, 256.0).values
    inv = F.INV_COLUMNS
    assert np.allclose(a[:, inv], b[:, inv], atol=1e-6, equal_nan=True)
    # log powers shift by log10(4) exactly
    i = F.COLUMN_NAMES.index("log_alpha")
    assert np.allclose(b[:, i] - a[:, i], np.log10(4.0))


def test_low_rate_marks_high_bands_missing():
    x = resample_poly(_eeg(1000.0), 50, 1000)
    f = F.continuous_features(x, 50.0)
    assert f.valid.all()
    for c in ("log_beta", "log_hi"):
        assert np.isnan(f.values[:, F.COLUMN_NAMES.index(c)]).all()
    assert np.isfinite(f.values[:, F.COLUMN_NAMES.index("log_alpha")]).all()
    assert f.indicators[F.INDICATOR_NAMES.index("has_beta")] == 0


def test_rate_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 50"):
        F.epoch_features(np.zeros((1, 30 * 40)), 40.0)


def test_bad_samples_flat_and_nan_epochs():
    x = _eeg(128.0, n_epochs=4)
    x[int(30 * 128) : int(30 * 128) + 2500] = np.nan  # 65 % of epoch 1
    x[2 * 3840 : 3 * 3840] = 3.0  # epoch 2 flat
    bad = np.zeros(x.size, dtype=bool)
    bad[3 * 3840 + 100 : 3 * 3840 + 400] = True  # epoch 3: 8 % bad, still scored
    f = F.continuous_features(x, 128.0, eeg_bad=bad)
    assert f.valid.tolist() == [True, False, False, True]
    assert np.isnan(f.values[1]).all()


def test_block_size_does_not_matter():
    x = _eeg(128.0, n_epochs=5)
    a = F.continuous_features(x, 128.0, block=2).values
    b = F.continuous_features(x, 128.0, block=120).values
    assert np.allclose(a, b, equal_nan=True, rtol=1e-10, atol=1e-10)


def test_trailing_partial_epoch_ignored_and_short_refused():
    x = _eeg(100.0, n_epochs=2)
    assert F.continuous_features(x[:-10], 100.0).n_epochs == 1
    with pytest.raises(ValueError, match="shorter than one"):
        F.continuous_features(x[:2000], 100.0)


def test_eog_emg_features():
    sf = 128.0
    x = _eeg(sf)
    rng = np.random.default_rng(1)
    move = np.repeat(rng.choice([-80.0, 80.0], size=x.size // 64), 64)[: x.size]
    e1, e2 = 0.3 * x + move, 0.3 * x - move
    f = F.continuous_features(x, sf, eog=np.stack([e1, e2]), emg=rng.standard_normal(x.size))
    corr = f.values[:, F.COLUMN_NAMES.index("eog_corr")]
    assert np.all(corr < -0.5)  # anti-phase eye movements
    assert f.indicators.tolist() == [1, 1, 1, 1, 1]
    one = F.continuous_features(x, sf, eog=e1)
    assert np.isnan(one.values[:, F.COLUMN_NAMES.index("eog_corr")]).all()
    assert one.indicators.tolist() == [1, 0, 0, 1, 1]


def test_running_normalizer_is_causal_and_ends_at_offline():
    x = _eeg(100.0, n_epochs=12, seed=3) * np.repeat(np.linspace(0.5, 2, 12), 3000)
    f = F.continuous_features(x, 100.0)
    prior = F.NormPrior.neutral()
    on = F.normalize_online(f, prior)
    # row k only depends on epochs 0..k
    part = F.normalize_online(f.take(slice(0, 7)), prior)
    assert np.array_equal(on[:7], part)
    # the running statistics at the last epoch are the whole-recording ones
    off = F.normalize_offline(f, prior)
    assert np.allclose(on[-1], off[-1])


@settings(max_examples=15, deadline=None)
@given(
    sfreq=st.sampled_from([50.0, 64.0, 100.0, 128.0, 200.0, 250.0, 256.0, 500.0]),
    scale=st.floats(0.01, 500.0),
    seed=st.integers(0, 2**16),
)
def test_any_rate_and_scale_gives_finite_inputs(sfreq, scale, seed):
    x = _eeg(sfreq, n_epochs=2, seed=seed) * scale
    f = F.continuous_features(x, sfreq)
    z = F.normalize_offline(f, F.NormPrior.neutral())
    assert z.shape == (2, F.N_INPUTS)
    assert np.isfinite(z).all()
