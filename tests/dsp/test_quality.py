"""dsp.quality flags on constructed signals."""

from __future__ import annotations

import numpy as np
import pytest
from _constants import FS

from dsp import _kernels, quality
from dsp.quality import (
    FLAT,
    LEAD_OFF,
    MAINS,
    MOVEMENT,
    NONFINITE,
    SATURATED,
    QualityThresholds,
    describe,
    epoch_quality,
)

N = int(30 * FS)
T = np.arange(N) / FS


def _eeg(seed=0, n_ch=1):
    """Pink-ish EEG of ~20 µV RMS, limited to 25 Hz (no high-frequency content)."""
    rng = np.random.default_rng(seed)
    spec = rng.standard_normal((n_ch, N // 2 + 1)) + 1j * rng.standard_normal((n_ch, N // 2 + 1))
    f = np.fft.rfftfreq(N, 1 / FS)
    spec *= np.where((f > 0.5) & (f < 25), 1 / np.sqrt(np.maximum(f, 0.5)), 0)
    x = np.fft.irfft(spec, n=N)
    return 20 * x / x.std(axis=-1, keepdims=True)


def test_clean_signal_has_no_flag():
    q = epoch_quality(_eeg(n_ch=3), FS, ["eeg", "eog", "eeg"])
    assert q.flags.shape == (3,)
    assert np.all(q.flags == 0) and q.good.all()
    assert np.allclose(q.sd, 20, rtol=0.01)


def test_each_flag_on_a_constructed_signal():
    base = _eeg(1)[0]
    rows = {
        "clean": base,
        "flat": np.zeros(N),
        "stuck": np.where(T < 20, 123.0, base),  # stuck ADC value for 2/3 of the epoch
        "railed": np.full(N, 187_500.0),
        "clipped": np.where((T > 3) & (T < 3.2), 187_500.0, base),
        "mains": base + 10 * np.sin(2 * np.pi * 50 * T),
        "swing": base + 600 * np.exp(-(((T - 15) / 1.5) ** 2)),
        "emg_burst": base
        + np.where((T > 10) & (T < 14), 1, 0) * 60 * np.random.default_rng(2).standard_normal(N),
        "nan": np.where((T > 5) & (T < 5.1), np.nan, base),
    }
    x = np.vstack(list(rows.values()))
    q = epoch_quality(x, FS)
    got = dict(zip(rows, q.flags.tolist()))
    assert got["clean"] == 0
    assert got["flat"] == FLAT
    assert got["stuck"] & FLAT
    assert got["railed"] == FLAT | SATURATED | LEAD_OFF
    assert got["clipped"] == SATURATED
    assert got["mains"] == MAINS
    assert got["swing"] == MOVEMENT
    assert got["emg_burst"] == MOVEMENT
    assert got["nan"] == NONFINITE
    i = list(rows).index("mains")
    assert q.mains_rms[i] == pytest.approx(10 / np.sqrt(2), rel=0.05)
    assert describe(got["railed"]) == ["flat", "saturated", "lead-off"]


def test_device_flags_types_and_epochs():
    x = np.stack([_eeg(3, n_ch=3), _eeg(4, n_ch=3)])  # (2 epochs, 3 channels, N)
    dev = np.zeros(x.shape, np.uint8)
    dev[1, 0, :1000] = 2  # headset FLAG_LEAD_OFF
    dev[0, 2, 7] = 4  # headset FLAG_SATURATED
    x[1, 1, 100] = np.nan
    q = epoch_quality(x, FS, ["eeg", "misc", "ecg"], flags=dev)
    assert q.flags.shape == (2, 3)
    assert q.flags[1, 0] == LEAD_OFF
    assert q.flags[0, 2] == SATURATED
    assert q.flags[1, 1] == NONFINITE  # misc: only non-finite
    assert q.flags[0, 0] == 0 and q.flags[0, 1] == 0


def test_ecg_and_emg_thresholds():
    # a 1.5 mV QRS-like spike train is normal on ECG but a movement on EEG
    ecg = np.zeros(N)
    ecg[:: int(FS)] = 1500.0
    ecg = np.convolve(ecg, np.hanning(9), mode="same") + _eeg(5)[0] * 0.1
    q = epoch_quality(np.vstack([ecg, ecg]), FS, ["ecg", "eeg"])
    assert q.flags[0] == 0 and q.flags[1] & MOVEMENT
    emg = np.random.default_rng(6).standard_normal(N) * 30  # broadband EMG
    q = epoch_quality(np.vstack([emg, emg]), FS, ["emg", "eeg"])
    assert q.flags[0] == 0 and q.flags[1] & MOVEMENT


def test_thresholds_and_mains_options():
    x = _eeg(7)[0] + 4 * np.sin(2 * np.pi * 60 * T)
    assert epoch_quality(x[None], FS, mains=60.0).flags[0] == 0
    strict = QualityThresholds(mains_rms_uv={"eeg": 2.0})
    assert epoch_quality(x[None], FS, mains=60.0, thresholds=strict).flags[0] == MAINS
    assert epoch_quality(x[None], FS, mains=None, thresholds=strict).flags[0] == 0


def test_input_errors():
    with pytest.raises(ValueError, match="shape"):
        epoch_quality(np.zeros(100), FS)
    with pytest.raises(ValueError, match="one type per channel"):
        epoch_quality(np.zeros((2, 100)), FS, ["eeg"])
    with pytest.raises(ValueError, match="mains"):
        epoch_quality(np.zeros((2, 100)), FS, mains=55)
    with pytest.raises(ValueError, match="flags"):
        epoch_quality(np.zeros((2, 100)), FS, flags=np.zeros((2, 99), np.uint8))
    with pytest.raises(ValueError, match="at least 8"):
        epoch_quality(np.zeros((2, 4)), FS)
    with pytest.raises(TypeError, match="real"):
        epoch_quality(np.zeros((2, 100), complex), FS)


def test_amplitude_kernel_against_numpy():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 300)) * 50
    x[1, 10:40] = 7.0
    x[2, 5] = np.nan
    x[2, 6] = 200_000.0
    out = np.empty((3, 6))
    _kernels.amplitude_stats(x, 187_000.0, out)
    for r in range(3):
        v = x[r][np.isfinite(x[r])]
        assert out[r, 0] == pytest.approx(v.std(), rel=1e-12)
        assert out[r, 1] == pytest.approx(np.ptp(v), rel=1e-12)
        assert out[r, 2] == pytest.approx((np.abs(v) >= 187_000).sum() / 300)
        assert out[r, 4] == pytest.approx((~np.isfinite(x[r])).mean())
        d = np.diff(x[r])
        d = d[np.isfinite(d)]
        assert out[r, 5] == pytest.approx(np.sqrt(np.mean(d * d)), rel=1e-12)
    assert out[1, 3] == pytest.approx(30 / 300)
    assert quality.EpochQuality.__doc__
