"""dsp.spectral: band power against signals of known power, features, per-epoch invariance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from _constants import FS

from dsp import spectral

N = int(30 * FS)
T = np.arange(N) / FS


def _tone(freq, amp, phase=0.0):
    return amp * np.sin(2 * np.pi * freq * T + phase)


@pytest.mark.parametrize("method", ["welch", "multitaper"])
def test_bandpower_of_known_sines(method):
    # 10.3 Hz (alpha) of amplitude 10 µV -> 50 µV²; 2 Hz (delta) of 30 µV -> 450 µV²
    x = np.vstack([_tone(10.3, 10.0), _tone(2.0, 30.0, 0.4) + _tone(10.3, 10.0)])
    bp = spectral.bandpower(x, FS, method=method)
    names = [b[0] for b in spectral.DEFAULT_BANDS]
    a, d = names.index("alpha"), names.index("delta")
    assert bp[0, a] == pytest.approx(50.0, rel=0.01)
    assert bp[1, d] == pytest.approx(450.0, rel=0.01)
    assert bp[1, a] == pytest.approx(50.0, rel=0.01)
    rel = spectral.bandpower(x, FS, method=method, relative=True)
    assert rel[0, a] == pytest.approx(1.0, abs=0.01)
    assert rel[1, d] == pytest.approx(0.9, abs=0.01)
    assert np.allclose(rel.sum(axis=-1), 1.0)


@pytest.mark.parametrize("method", ["welch", "multitaper"])
def test_white_noise_power_density(method):
    rng = np.random.default_rng(0)
    sigma = 10.0
    x = sigma * rng.standard_normal((4, N))
    bp = spectral.bandpower(x, FS, [("all", 0.0, FS / 2 + 1)], method=method)
    assert np.allclose(bp[:, 0], sigma**2, rtol=0.05)
    freqs, p = spectral.psd(x, FS, method=method)
    flat = p[:, (freqs > 1) & (freqs < 120)].mean()
    assert flat == pytest.approx(2 * sigma**2 / FS, rel=0.05)


def test_welch_is_scipy_welch():
    x = np.random.default_rng(1).standard_normal((3, N))
    f, p = spectral.psd(x, FS)
    f_ref, p_ref = ss.welch(x, FS, window="hann", nperseg=int(4 * FS))
    assert np.array_equal(f, f_ref)
    assert np.allclose(p, p_ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["welch", "multitaper"])
def test_whole_night_equals_per_epoch(method):
    rng = np.random.default_rng(2)
    night = 15 * rng.standard_normal((5, 3, N))
    whole = spectral.features(night, FS, method=method)
    for e in range(night.shape[0]):
        one = spectral.features(night[e], FS, method=method)
        for key in whole:
            assert np.allclose(whole[key][e], one[key], rtol=1e-12, atol=0), key
    assert whole["bandpower"].shape == (5, 3, 6)
    assert whole["hjorth"].shape == (5, 3, 3)
    assert whole["edge"].shape == (5, 3)


def test_epochs_view():
    data = np.arange(2 * 100, dtype=float).reshape(2, 100)
    ep = spectral.epochs(data, 10.0, epoch_s=3.0)
    assert ep.shape == (3, 2, 30)
    assert np.array_equal(ep[1, 1], data[1, 30:60])
    assert np.shares_memory(ep, data)
    with pytest.raises(ValueError, match="2-D"):
        spectral.epochs(data[0], 10.0)


def test_spectral_edge_and_entropy():
    tone = _tone(10.0, 20.0)[None]
    noise = np.random.default_rng(3).standard_normal((1, N)) * 20
    sef = spectral.spectral_edge(tone, FS)
    assert sef[0] == pytest.approx(10.0, abs=0.5)
    sef_noise = spectral.spectral_edge(noise, FS, edge=0.5)
    assert sef_noise[0] == pytest.approx((0.5 + 35) / 2, abs=1.5)
    h_tone = spectral.spectral_entropy(tone, FS)
    h_noise = spectral.spectral_entropy(noise, FS)
    assert h_tone[0] < 0.3 < 0.95 < h_noise[0] <= 1.0
    bits = spectral.spectral_entropy(noise, FS, normalize=False)
    assert bits[0] > 5
    zero = spectral.spectral_edge(np.zeros((1, N)), FS)
    assert np.isnan(zero[0])
    with pytest.raises(ValueError, match="edge"):
        spectral.spectral_edge(tone, FS, edge=1.5)
    with pytest.raises(ValueError, match="no PSD bin"):
        spectral.spectral_entropy(tone, FS, fmin=200, fmax=300)


def test_hjorth_against_numpy():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 500)) * 7 + 3
    h = spectral.hjorth(x)
    d1 = np.diff(x, axis=-1)
    d2 = np.diff(x, n=2, axis=-1)
    act = x.var(axis=-1)
    mob = np.sqrt(d1.var(axis=-1) / act)
    comp = np.sqrt(d2.var(axis=-1) / d1.var(axis=-1)) / mob
    assert np.allclose(h[..., 0], act, rtol=1e-12)
    assert np.allclose(h[..., 1], mob, rtol=1e-12)
    assert np.allclose(h[..., 2], comp, rtol=1e-12)
    # sine: mobility = 2 pi f / fs
    s = spectral.hjorth(_tone(5.0, 1.0))
    assert s[1] == pytest.approx(2 * np.pi * 5 / FS, rel=1e-3)
    assert s[2] == pytest.approx(1.0, abs=1e-3)
    c = spectral.hjorth(np.ones((1, 10)))
    assert c[0, 0] == 0 and np.isnan(c[0, 1])


def test_band_envelope_rms():
    x = np.vstack([_tone(10.0, 10.0) + _tone(2.0, 40.0), _tone(25.0, 4.0)])
    env = spectral.band_envelope(x, FS, [("alpha", 8.0, 12.0), ("beta", 16.0, 30.0)])
    assert env[0, 0] == pytest.approx(10 / np.sqrt(2), rel=0.02)
    assert env[1, 1] == pytest.approx(4 / np.sqrt(2), rel=0.02)
    assert env[1, 0] < 0.1
    hp = spectral.band_envelope(x[1], FS, [(10.0, 200.0)])  # high edge >= Nyquist: high-pass
    assert hp[0] == pytest.approx(4 / np.sqrt(2), rel=0.02)


def test_input_errors():
    x = np.zeros((2, 100))
    with pytest.raises(ValueError, match="NaN"):
        spectral.bandpower(np.full((1, 100), np.nan), FS)
    with pytest.raises(ValueError, match="method"):
        spectral.bandpower(x, FS, method="fft")
    with pytest.raises(ValueError, match="low < high"):
        spectral.bandpower(x, FS, [(4.0, 2.0)])
    with pytest.raises(ValueError, match="Nyquist"):
        spectral.bandpower(x, FS, [(200.0, 300.0)])
    with pytest.raises(TypeError, match="bands"):
        spectral.bandpower(x, FS, "delta")
    with pytest.raises(ValueError, match="empty"):
        spectral.bandpower(x, FS, [])
    with pytest.raises(ValueError, match="positive"):
        spectral.bandpower(x, 0.0)
    with pytest.raises(ValueError, match="at least 3"):
        spectral.hjorth(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="numeric"):
        spectral.hjorth(np.zeros((2, 5), complex))
