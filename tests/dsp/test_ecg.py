"""R-peak detector, heart rate and RMSSD (dsp/ecg.py, dsp/_ecg_kernels.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _constants import FS
from _events_synth import ecg, match_beats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import sosfilt

from dsp import _ecg_kernels as k
from dsp.ecg import (
    HeartRateTracker,
    RPeakDetector,
    detect_r_peaks,
    heart_rate,
    rmssd,
    rr_intervals,
)

TOL = round(0.050 * FS)  # 50 ms


def _score(peaks, truth):
    hit, miss, extra = match_beats(peaks, truth, TOL)
    return hit / truth.size, extra


@pytest.mark.parametrize("hr", [45.0, 75.0, 150.0])
def test_clean_signal_99_percent_within_50ms(hr):
    x, truth = ecg(300, FS, hr_bpm=hr, seed=int(hr))
    peaks = detect_r_peaks(x, FS)
    sens, extra = _score(peaks, truth)
    assert sens >= 0.99
    assert extra <= 0.01 * truth.size
    # timing: matched beats within one sample of the true R peak
    nearest = np.array([peaks[np.argmin(np.abs(peaks - t))] - t for t in truth])
    assert np.mean(np.abs(nearest) <= 1) >= 0.99


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("white noise 150 uV", {"noise_uv": 150.0}),
        ("inverted lead", {"polarity": -1.0}),
        ("small QRS 240 uV", {"amplitude": 0.2}),
        ("baseline wander 1 mV", {"wander_uv": 1000.0}),
    ],
)
def test_sensible_under_noise(what, kwargs):
    x, truth = ecg(240, FS, hr_bpm=70, seed=11, **kwargs)
    sens, extra = _score(detect_r_peaks(x, FS), truth)
    assert sens >= 0.97, what
    assert extra <= 0.03 * truth.size, what


def test_mains_emg_bursts_and_movement():
    x, truth = ecg(240, FS, hr_bpm=65, seed=12)
    n = x.size
    t = np.arange(n) / FS
    rng = np.random.default_rng(0)
    x = x + 300.0 * np.sin(2 * np.pi * 50.0 * t)
    for _ in range(8):
        s = int(rng.integers(0, n - 512))
        x[s : s + 512] += 200.0 * rng.standard_normal(512)
    for c in rng.uniform(10, 230, 4):
        x += 3000.0 * np.exp(-0.5 * ((t - c) / 0.5) ** 2)
    sens, extra = _score(detect_r_peaks(x, FS), truth)
    assert sens >= 0.97
    assert extra <= 0.03 * truth.size


def test_amplitude_drop_recovers():
    x, truth = ecg(240, FS, seed=13)
    x[x.size // 2 :] *= 0.25
    peaks = detect_r_peaks(x, FS)
    late = truth[truth > x.size // 2 + 15 * FS]
    sens, _ = _score(peaks[peaks > x.size // 2 + 15 * FS], late)
    assert sens >= 0.99


@pytest.mark.parametrize("kind", ["flags", "flat", "railed", "nan", "low noise"])
def test_no_beats_on_lead_off(kind):
    x, truth = ecg(150, FS, seed=14)
    lo, hi = int(60 * FS), int(90 * FS)
    flags = np.zeros(x.size, np.uint8)
    if kind == "flags":
        flags[lo:hi] = 2  # FLAG_LEAD_OFF
    elif kind == "flat":
        x[lo:hi] = x[lo]
    elif kind == "railed":
        x[lo:hi] = 187_500.0
    elif kind == "nan":
        x[lo:hi] = np.nan
    else:
        x[lo:hi] = 20.0 * np.random.default_rng(1).standard_normal(hi - lo)
    det = RPeakDetector(FS)
    peaks = det.push(x, flags)
    inside = peaks[(peaks >= lo + int(0.3 * FS)) & (peaks < hi)]
    assert inside.size == 0
    if kind != "low noise":  # an unflagged quiet electrode is not recognised, only silent
        assert det.restarts, "the lead-off must restart the detector"
    # beats are found again after the lead-off (after the 2-s learning)
    after = truth[truth >= hi + 3 * FS]
    sens, _ = _score(peaks[peaks >= hi + 3 * FS], after)
    assert sens >= 0.99
    # intervals spanning the lead-off are rejected
    _, rr, ok = rr_intervals(peaks, FS, breaks=det.restarts)
    assert np.all(rr[ok] < 2.0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), chunk_max=st.integers(1, 700))
def test_streaming_identical_whatever_chunking(seed, chunk_max):
    x, _ = ecg(40, FS, hr_bpm=80, seed=seed, noise_uv=30.0)
    flags = np.zeros(x.size, np.uint8)
    flags[3000:3400] = 2
    offline = detect_r_peaks(x, FS, flags=flags)
    det = RPeakDetector(FS)
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, chunk_max + 1))
        out.append(det.push(x[i : i + n], flags[i : i + n]))
        i += n
    out.append(det.flush())
    assert np.array_equal(np.concatenate(out), offline)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), hr=st.floats(40, 170), noise=st.floats(0, 200))
def test_kernel_matches_python_reference_on_small_inputs(seed, hr, noise):
    """The compiled kernel gives exactly what the same loop interpreted by Python gives."""
    x, _ = ecg(8, FS, hr_bpm=hr, seed=seed, noise_uv=noise)
    results = []
    for fn in (k.ecg_detect, k.ecg_detect.py_func):
        det = RPeakDetector(FS)
        mwi = np.zeros(x.size)
        out = np.empty(x.size, np.int64)
        resets = np.empty(x.size, np.int64)
        n = fn(
            x, np.ones(x.size, bool), 0, det._sos, det._zi_unit, det._zi, det._dbuf, det._mwi,
            det._raw, det._rr, det._fst, det._ist, det._ipar, det._fpar, det._learn_idx,
            det._learn_val, out, resets, mwi,
        )  # fmt: skip
        results.append((out[:n].copy(), mwi))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


def test_front_end_matches_scipy_reference():
    """Band-pass + 5-point derivative + squaring + 150-ms moving average, against scipy/numpy."""
    x, _ = ecg(20, FS, seed=3, noise_uv=20.0)
    det = RPeakDetector(FS)
    mwi = np.zeros(x.size)
    det.push(x, _mwi_out=mwi)
    y = sosfilt(det._sos, x, zi=det._zi_unit * x[0])[0]
    d = np.convolve(y, np.array([2.0, 1.0, 0.0, -1.0, -2.0]) / 8.0)[: x.size]
    win = int(det._ipar[k.P_WIN])
    ref = np.convolve(d * d, np.ones(win) / win)[: x.size]
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(mwi - ref)) <= 1e-9 * scale


def test_rate_and_rmssd_against_truth():
    x, truth = ecg(300, FS, hr_bpm=62, seed=21)
    peaks = detect_r_peaks(x, FS)
    true_rmssd = rmssd(truth, FS)
    assert rmssd(peaks, FS) == pytest.approx(true_rmssd, rel=0.1)
    t, hr = heart_rate(peaks, FS)
    assert np.median(hr) == pytest.approx(62, abs=3)
    trk = HeartRateTracker(FS)
    for i in range(0, x.size, 32):
        trk.push(x[i : i + 32])
    assert trk.rate_bpm(60) == pytest.approx(62, abs=3)
    assert trk.rmssd_ms(120) == pytest.approx(true_rmssd, rel=0.15)
    assert trk.last_beat is not None


def test_rr_intervals_rejects_ectopic_and_missed_beats():
    p = np.array([0, 256, 512, 768, 900, 1024, 1280, 1792, 2048, 2304])
    _, rr, ok = rr_intervals(p, 256.0)
    assert rr.size == 9
    assert ok.tolist() == [True, True, True, False, False, True, False, True, True]
    with pytest.raises(ValueError, match="increasing"):
        rr_intervals([5, 3], 256.0)


def test_bad_input():
    with pytest.raises(ValueError, match="sfreq"):
        RPeakDetector(50.0)
    with pytest.raises(ValueError, match="polarity"):
        RPeakDetector(FS, polarity="up")
    with pytest.raises(ValueError, match="1-D"):
        detect_r_peaks(np.zeros((2, 10)), FS)
    with pytest.raises(ValueError, match="flags shape"):
        detect_r_peaks(np.zeros(10), FS, flags=np.zeros(9, np.uint8))
    det = RPeakDetector(FS)
    det.push(np.zeros(100), first_sample=1000)
    with pytest.raises(ValueError, match="back in time"):
        det.push(np.zeros(10), first_sample=500)
    assert np.isnan(rmssd([1, 300], FS))


@pytest.mark.parametrize("faults", ["", "mains=30,movement=30,pops=20,drift=300,leadoff=4"])
def test_against_simulated_sleeper_beats(faults, make_sleeper):
    from headset.faults import parse_faults

    s = make_sleeper(77, profile="healthy", duration_s=900.0, faults=parse_faults(faults))
    det = RPeakDetector(s.sfreq)
    peaks, flags = [], []
    while not s.done:
        ch = s.read(300)
        i = ch.ch_names.index("ECG")
        peaks.append(det.push(ch.data[i], ch.flags[i], ch.first_sample))
        flags.append(ch.flags[i])
    peaks.append(det.flush())
    peaks = np.concatenate(peaks)
    flags = np.concatenate(flags)
    bad = (flags & 15) != 0
    truth = s.beat_samples
    usable = truth[~bad[truth]]
    sens, extra = _score(peaks, usable)
    assert sens >= (0.99 if not faults else 0.97)
    assert extra <= 0.01 * usable.size
    assert not np.any(bad[peaks])  # never a beat on a flagged sample


def test_tracker_windows_against_a_brute_force_reference():
    # the tracker's mean rate and RMSSD over a window at any moment equal the same figures
    # computed directly from the accepted intervals of the whole recording (rr_intervals):
    # the mean the same bits, RMSSD to 1e-12
    x, _ = ecg(240, FS, hr_bpm=70, seed=5)
    trk = HeartRateTracker(FS, keep_s=300.0)
    peaks, checked = [], 0
    for i in range(0, x.size, 200):
        peaks.extend(trk.push(x[i : i + 200]).tolist())
        _, rr, ok = rr_intervals(np.asarray(peaks), FS)
        close = np.asarray(peaks[1:])
        for window_s, now in ((10.0, i + 200), (60.0, i + 200), (10.0, i + 100)):
            sel = ok & (close >= now - window_s * FS) & (close <= now)
            w_rr = rr[sel]
            rate = trk.rate_bpm(window_s, now=now)
            if w_rr.size < 2:
                assert np.isnan(rate)
            else:
                assert rate == 60.0 / float(np.mean(w_rr.tolist()))
                checked += 1
            # consecutive accepted intervals (beats k-1, k, k+1) inside the window
            idx = np.flatnonzero(sel)
            pairs = [(a, b) for a, b in zip(idx[:-1], idx[1:]) if b == a + 1]
            d = np.array([(rr[b] - rr[a]) * 1000.0 for a, b in pairs])
            want = float(np.sqrt(np.mean(d * d))) if d.size >= 2 else np.nan
            np.testing.assert_allclose(trk.rmssd_ms(window_s, now=now), want, rtol=1e-12)
    assert checked > 40
