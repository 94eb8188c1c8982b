"""dsp.spectral: band power against signals of known power, features, per-epoch invariance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from _constants import FS
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ------------------------------------------------------------------------------ the engine
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 700),
    lead=st.sampled_from([(), (1,), (3,), (2, 3)]),
    frac=st.floats(0.05, 1.0),
    overlap=st.floats(0.0, 0.95),
    window=st.sampled_from(["hann", "hamming", ("tukey", 0.25), "boxcar"]),
    detrend=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_welch_psd_is_scipy_welch(n, lead, frac, overlap, window, detrend, seed):
    # scipy.signal.welch's definition (density, one-sided, DC and Nyquist not doubled) for any
    # segment length, overlap, window and leading shape; tolerance 1e-12 of the row's peak
    # (the segment mean is summed in another order)
    x = 40.0 * np.random.default_rng(seed).standard_normal(lead + (n,)) + 7.0
    nperseg = max(2, int(frac * n))
    noverlap = min(nperseg - 1, int(overlap * nperseg))
    f, p = spectral.welch_psd(x, 200.0, nperseg, noverlap=noverlap, window=window, detrend=detrend)
    f_ref, p_ref = ss.welch(
        x, 200.0, window, nperseg, noverlap, detrend="constant" if detrend else False
    )
    np.testing.assert_array_equal(f, f_ref)
    assert p.shape == p_ref.shape == lead + (nperseg // 2 + 1,)
    peak = np.max(p_ref, axis=-1, keepdims=True)
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=1e-12 * float(np.max(peak)))


def test_welch_psd_segment_weights():
    # weights 0 drop a segment (an artifact there leaves no trace), weights 1 average the
    # rest: the mean of scipy's periodograms of the kept segments (tolerance 1e-12)
    rng = np.random.default_rng(3)
    x = 20.0 * rng.standard_normal((2, 3000))
    x[0, 1250:1300] += 5000.0  # inside segments 5 and 6 (400 samples every 200)
    keep = np.ones((2, 14), bool)
    keep[0, [5, 6]] = False
    f, p = spectral.welch_psd(x, 100.0, 400, weights=keep)
    for row in range(2):
        segs = [x[row, 200 * s : 200 * s + 400] for s in np.flatnonzero(keep[row])]
        ref = np.mean([ss.welch(seg, 100.0, nperseg=400)[1] for seg in segs], axis=0)
        np.testing.assert_allclose(p[row], ref, rtol=1e-12)
    # fractional weights are a weighted mean; no weight at all gives NaN
    w = np.linspace(0.5, 2.0, 14)
    per = np.stack(
        [ss.welch(x[1, 200 * s : 200 * s + 400], 100.0, nperseg=400)[1] for s in range(14)]
    )
    _, pw = spectral.welch_psd(x[1], 100.0, 400, weights=w)
    np.testing.assert_allclose(pw, w @ per / w.sum(), rtol=1e-12)
    _, none = spectral.welch_psd(x, 100.0, 400, weights=np.zeros(14))  # broadcast to the rows
    assert np.isnan(none).all()


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(2, 40),
    pick=st.integers(0, 39),
    seed=st.integers(0, 2**16),
    method=st.sampled_from(["welch", "multitaper"]),
)
def test_rows_do_not_depend_on_the_batch(n_rows, pick, seed, method):
    # a row's PSD and band powers are the same bits whether it comes alone (the online
    # stager, epoch by epoch) or with a whole night (offline): tolerance zero
    rng = np.random.default_rng(seed)
    x = 30.0 * rng.standard_normal((n_rows, 1500))
    ok = rng.random((n_rows, 5)) > 0.2  # (1500 - 500) // 250 + 1 segments
    i = pick % n_rows
    if method == "welch":
        f, whole = spectral.welch_psd(x, 100.0, 500, weights=ok)
        _, one = spectral.welch_psd(x[i : i + 1], 100.0, 500, weights=ok[i : i + 1])
    else:
        f, whole = spectral.multitaper_psd(x, 100.0)
        _, one = spectral.multitaper_psd(x[i : i + 1], 100.0)
    np.testing.assert_array_equal(one[0], whole[i])
    bands = {"delta": (0.5, 4.0), "sigma": (12.0, 16.0), "beta": (16.0, 30.0)}
    for relative in (False, True):
        bp = spectral.band_power(whole, f, bands, relative=relative)
        np.testing.assert_array_equal(
            spectral.band_power(one, f, bands, relative=relative)[0], bp[i]
        )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 600),
    lead=st.sampled_from([(1,), (3,), (2, 5)]),
    window=st.sampled_from(["hann", "hamming", "boxcar"]),
    edges=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_periodogram_is_welch_psd_then_band_power(n, lead, window, edges, seed):
    # the detectors' set-up-once periodogram: welch_psd with one segment per row (no
    # overlap, no detrend) then band_power, the same bits (tolerance zero); its band powers
    # take the bins of the bands only, the DC and Nyquist bins halved when a band holds them
    x = 25.0 * np.random.default_rng(seed).standard_normal(lead + (n,)) + 3.0
    bands = {"theta": (4.0, 8.0), "alpha": (8.0, 11.5), "beta": (16.0, 45.0)}
    if edges:
        bands = {"dc": (0.0, 2.0), "alpha": (8.0, 11.5), "top": (30.0, 60.0)}
    per = spectral.Periodogram(100.0, n, bands, window=window)
    f, p = spectral.welch_psd(x, 100.0, n, noverlap=0, window=window, detrend=False)
    np.testing.assert_array_equal(per.freqs, f)
    np.testing.assert_array_equal(per.psd(x), p)
    np.testing.assert_array_equal(per.band_power(x), spectral.band_power(p, f, bands))
    # a sine of amplitude A in a band gives about A**2 / 2 there (Hann leakage: 1 %)
    if window == "hann" and n >= 400 and not edges:
        t = np.arange(n) / 100.0
        bp = per.band_power(4.0 * np.sin(2 * np.pi * 10.0 * t))
        np.testing.assert_allclose(bp[1], 8.0, rtol=0.05)
        assert bp[0] < 0.2 and bp[2] < 0.2


def test_periodogram_input_errors():
    with pytest.raises(ValueError, match="nperseg"):
        spectral.Periodogram(100.0, 1, {"a": (1.0, 2.0)})
    with pytest.raises(ValueError, match="window"):
        spectral.Periodogram(100.0, 8, {"a": (1.0, 2.0)}, window=np.ones(7))
    with pytest.raises(ValueError, match="Nyquist"):
        spectral.Periodogram(100.0, 8, {"a": (60.0, 70.0)})


def test_band_power_and_band_slice():
    f = np.fft.rfftfreq(400, 1 / 100.0)  # 0.25 Hz bins
    assert spectral.band_slice(f, 0.5, 2.0) == slice(2, 8)  # half-open: 2.0 Hz not counted
    assert spectral.band_slice(f, 0.3, 0.6) == slice(2, 3)
    assert spectral.band_slice(f, 45.0, 200.0) == slice(180, 201)
    assert spectral.band_slice(f, 300.0, 400.0) == slice(201, 201)
    psd = np.zeros((2, f.size))
    psd[0, 40] = 8.0  # 10 Hz, 8 µV²/Hz over a 0.25-Hz bin: 2 µV²
    psd[1, [4, 40]] = 4.0
    by_map = spectral.band_power(psd, f, {"delta": (0.5, 4.0), "alpha": (8.0, 12.0)})
    by_seq = spectral.band_power(psd, f, [("delta", 0.5, 4.0), (8.0, 12.0)])
    np.testing.assert_array_equal(by_map, [[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_array_equal(by_map, by_seq)
    rel = spectral.band_power(psd, f, {"a": (0.5, 8.0), "b": (8.0, 12.0)}, relative=True)
    np.testing.assert_array_equal(rel, [[0.0, 1.0], [0.5, 0.5]])
    assert np.isnan(spectral.band_power(np.zeros(f.size), f, [(1.0, 2.0)], relative=True)).all()
    with pytest.raises(ValueError, match="evenly spaced"):
        spectral.band_power(psd, f[1:], [(1.0, 2.0)])
    with pytest.raises(ValueError, match="200 bins on its last axis but freqs 201"):
        spectral.band_power(psd[:, :-1], f, [(1.0, 2.0)])
    with pytest.raises(ValueError, match="Nyquist"):
        spectral.band_power(psd, f, [(60.0, 70.0)])


def test_engine_input_errors():
    x = np.zeros((2, 100))
    with pytest.raises(ValueError, match="nperseg must be an int between 2 and 100"):
        spectral.welch_psd(x, FS, 101)
    with pytest.raises(TypeError, match="nperseg must be an int"):
        spectral.welch_psd(x, FS, 50.0)
    with pytest.raises(ValueError, match="noverlap must be an int between 0 and 49"):
        spectral.welch_psd(x, FS, 50, noverlap=50)
    with pytest.raises(ValueError, match=r"window must have shape \(50,\)"):
        spectral.welch_psd(x, FS, 50, window=np.ones(49))
    with pytest.raises(ValueError, match="not all zero"):
        spectral.welch_psd(x, FS, 50, window=np.zeros(50))
    with pytest.raises(ValueError, match="3 segments"):
        spectral.welch_psd(x, FS, 50, weights=np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        spectral.welch_psd(x, FS, 50, weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        spectral.multitaper_psd(x, FS, nw=0.0)
    f, p = spectral.welch_psd(np.full((1, 100), np.nan), FS, 50)  # propagated, as scipy
    assert np.isnan(p).all() and f.size == 26


@pytest.mark.parametrize("method", ["welch", "multitaper"])
def test_whole_night_equals_per_epoch(method):
    rng = np.random.default_rng(2)
    night = 15 * rng.standard_normal((5, 3, N))
    whole = spectral.features(night, FS, method=method)
    for e in range(night.shape[0]):
        one = spectral.features(night[e], FS, method=method)
        for key in whole:
            np.testing.assert_array_equal(whole[key][e], one[key], err_msg=key)
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
